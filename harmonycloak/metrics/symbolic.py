"""Symbolic (piano-roll) metrics of the HarmonyCloak paper, §5.1: EB, UPC, QN, DP and TD.

The paper takes these metrics from MuseGAN [Dong2018] (its reference [18]), and Tonal Distance
from [Harte2006] (its reference [62]). Each metric is a pure numpy function; NaN means
"undefined for this input" and each docstring says when.

Input convention
----------------
A single-track roll has shape ``(bars, steps_per_bar, 128)``: axis 0 bars, axis 1 time steps
inside a bar, axis 2 MIDI pitch 0..127 (pitch class = pitch mod 12, 0 = C). Values are
velocities in [0, 1], booleans or integers; a cell is *active* where its value is > 0, and only
activity matters (velocity never weights a metric). A multi-track roll has shape
``(tracks, bars, steps_per_bar, 128)``.

A *note* is a maximal run of consecutive active steps at one pitch. Bars are first flattened
into one time axis, so a run that crosses a bar line is one note (MuseGAN's first evaluation
code cut notes at bar lines; its later code flattens as here). Two notes of one pitch that
touch with no silent step between them cannot be told apart in a piano roll and count as one.

References
----------
[Dong2018] H.-W. Dong, W.-Y. Hsiao, L.-C. Yang and Y.-H. Yang, "MuseGAN: Multi-track sequential
    generative adversarial networks for symbolic music generation and accompaniment",
    Proc. AAAI 2018, §"Objective metrics".
[Harte2006] C. Harte, M. Sandler and M. Gasser, "Detecting harmonic change in musical audio",
    Proc. 1st ACM Workshop on Audio and Music Computing Multimedia, 2006, pp. 21-26.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from harmonycloak.errors import SettingsError

NUM_PITCHES = 128
NUM_PITCH_CLASSES = 12


# --- Helpers ---------------------------------------------------------------------------------


def _active_bars(roll: np.ndarray, what: str = "piano roll") -> np.ndarray:
    """Validate a single-track roll and return its activity, bool (bars, steps_per_bar, 128)."""
    array = np.asarray(roll)
    if array.ndim != 3 or array.shape[-1] != NUM_PITCHES:
        raise SettingsError(
            f"a {what} must have shape (bars, steps_per_bar, 128); got {tuple(array.shape)}"
        )
    return array > 0


def _notes(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes of an activity roll, bars flattened to one time axis.

    Args:
        active: bool (bars, steps_per_bar, 128).

    Returns:
        (onset_steps, lengths_steps, pitches), three int arrays of shape (notes,); onset steps
        count from the start of the roll.
    """
    by_pitch = active.reshape(-1, NUM_PITCHES).T  # (128, time)
    padded = np.pad(by_pitch.astype(np.int8), ((0, 0), (1, 1)))  # (128, time + 2)
    edges = np.diff(padded, axis=1)  # +1 at onsets, -1 one step after the last active step
    # np.nonzero walks row-major (pitch, then time), so the k-th onset and k-th offset
    # belong to the same note.
    onset_pitch, onset_step = np.nonzero(edges == 1)
    _, offset_step = np.nonzero(edges == -1)
    return onset_step, offset_step - onset_step, onset_pitch


# --- Intra-track metrics ---------------------------------------------------------------------


def empty_bar_ratio(roll: np.ndarray) -> float:
    """Empty Bars (EB): the share of bars in which no cell is active.

    Formula: EB = #{bars b : roll[b, t, p] <= 0 for all t, p} / #bars, in [0, 1]
    (the paper reports it in %).

    Args:
        roll: (bars, steps_per_bar, 128), one track.

    Returns:
        EB in [0, 1]; NaN when the roll has no bar.

    Reference: [Dong2018] "EB: ratio of empty bars"; HarmonyCloak §5.1.
    """
    active = _active_bars(roll)
    if active.shape[0] == 0:
        return math.nan
    is_empty = ~active.any(axis=(1, 2))  # (bars,)
    return float(is_empty.mean())


def bar_chroma(roll: np.ndarray) -> np.ndarray:
    """Chroma of each bar: how many active (step, pitch) cells fall on each pitch class.

    Formula: chroma[b, k] = #{(t, p) : roll[b, t, p] > 0 and p mod 12 = k}. Cells are counted
    (a note of 3 steps weighs 3), velocities are not, as in MuseGAN's binary rolls [Dong2018].
    Any segmentation works: pass (windows, steps_per_window, 128) to get a chroma per window.

    Args:
        roll: (bars, steps_per_bar, 128), one track.

    Returns:
        float array (bars, 12); an empty bar has an all-zero row.
    """
    active = _active_bars(roll)
    per_pitch = active.sum(axis=1)  # (bars, 128)
    # 128 = 10 full octaves + 8 pitches: pad to 11 octaves, fold octaves onto pitch classes.
    padded = np.pad(per_pitch, ((0, 0), (0, 11 * NUM_PITCH_CLASSES - NUM_PITCHES)))
    return padded.reshape(-1, 11, NUM_PITCH_CLASSES).sum(axis=1).astype(np.float64)


def used_pitch_classes_per_bar(roll: np.ndarray) -> float:
    """Used Pitch Classes (UPC) per bar, averaged over the non-empty bars.

    Formula: UPC = mean over bars b with any active cell of #{k : bar_chroma(roll)[b, k] > 0},
    in [1, 12] (0 is impossible because empty bars are left out).

    Empty bars are left out as in MuseGAN's evaluation code for the AAAI paper, which gives an
    empty bar NaN and averages with nanmean [Dong2018]; its later code averaged over all bars,
    which mixes EB into UPC. Drum tracks have no pitch classes: do not apply UPC to them.

    Args:
        roll: (bars, steps_per_bar, 128), one track.

    Returns:
        UPC; NaN when every bar is empty (or there is no bar).

    Reference: [Dong2018] "UPC: number of used pitch classes per bar (from 0 to 12)";
    HarmonyCloak §5.1.
    """
    chroma = bar_chroma(roll)  # (bars, 12)
    used = (chroma > 0).sum(axis=1)  # (bars,)
    non_empty = used > 0
    if not non_empty.any():
        return math.nan
    return float(used[non_empty].mean())


def qualified_note_min_steps(steps_per_bar: int) -> int:
    """The shortest qualified note at `steps_per_bar` steps per 4/4 bar: a 32nd note, rounded up.

    The papers' "three time steps (a 32nd note)" at 96 steps per bar, scaled: 3 at 96, 2 at 48,
    1 at 16 or fewer (a grid that cannot hold a 32nd note qualifies every note).
    """
    if steps_per_bar < 1:
        raise SettingsError(f"a bar has at least one step; got {steps_per_bar}")
    return max(1, math.ceil(3 * steps_per_bar / 96))


def qualified_note_ratio(roll: np.ndarray, min_steps: int = 3) -> float:
    """Qualified Notes (QN): the share of notes lasting at least `min_steps` time steps.

    Formula: QN = #{notes n : length(n) >= min_steps} / #notes, pooled over the whole track
    (notes as defined in the module docstring, so a note held over a bar line is one note).

    `min_steps=3` follows the papers' text: "no shorter than three time steps (i.e. a 32nd
    note)" at MuseGAN's 96 steps per bar [Dong2018]; MuseGAN's released code used 2 instead.

    Args:
        roll: (bars, steps_per_bar, 128), one track.
        min_steps: shortest qualified note in time steps, >= 1.

    Returns:
        QN in [0, 1]; NaN when the track has no note.

    Reference: [Dong2018] "QN: ratio of qualified notes"; HarmonyCloak §5.1.
    """
    if min_steps < 1:
        raise SettingsError(f"the shortest qualified note must be at least 1 step; got {min_steps}")
    _, lengths, _ = _notes(_active_bars(roll))
    if lengths.size == 0:
        return math.nan
    return float(np.mean(lengths >= min_steps))


def drum_pattern_ratio(
    drum_roll: np.ndarray, grid_per_bar: int = 16, tolerance_steps: int = 0
) -> float:
    """Drum Pattern (DP): the share of drum onsets that lie on an 8- or 16-beat grid.

    Grid: `grid_per_bar` equally spaced points per bar, at steps k * g for k = 0..grid_per_bar-1
    with spacing g = steps_per_bar / grid_per_bar (which must be a whole number). In 4/4 the
    16-point grid is every sixteenth note and the 8-point grid every eighth note; an 8-beat
    pattern's onsets all lie on the 16-beat grid, so the default grid_per_bar=16 counts an
    onset that fits "an 8- or 16-beat pattern". Use grid_per_bar=8 to ask for the 8-beat grid.

    An onset is the first step of a note (module docstring). Its position inside its bar is
    s = onset mod steps_per_bar; it is on the grid when the circular distance from s to the
    nearest grid point, min(s mod g, g - s mod g), is at most `tolerance_steps`.

    Formula: DP = #{onsets on the grid} / #onsets, in [0, 1] (the paper reports it in %).

    Deviation: MuseGAN's code [Dong2018] gives an onset one step off the grid a partial credit
    (0.1 at 96 steps per bar) instead of this all-or-nothing window, and its first version also
    kept the best of six shifted grids; here the grid starts on the downbeat. With
    tolerance_steps=0, grid_per_bar=16 and steps_per_bar a multiple of 16, DP equals muspy's
    drum_in_pattern_rate(music, "duple") at muspy resolution steps_per_bar / 4.

    Args:
        drum_roll: (bars, steps_per_bar, 128), the drum track.
        grid_per_bar: grid points per bar (16: sixteenth notes in 4/4; 8: eighth notes).
        tolerance_steps: how far from a grid point, in steps, an onset still counts;
            0 <= 2 * tolerance_steps < g, so that the windows around grid points never touch.

    Returns:
        DP in [0, 1]; NaN when the drum track has no onset.

    Reference: [Dong2018] "DP: ratio of notes in 8- or 16-beat patterns"; HarmonyCloak §5.1.
    """
    active = _active_bars(drum_roll, "drum piano roll")
    steps_per_bar = active.shape[1]
    if grid_per_bar < 1 or steps_per_bar == 0 or steps_per_bar % grid_per_bar != 0:
        raise SettingsError(
            f"a bar of {steps_per_bar} time steps cannot be split into a grid of {grid_per_bar}"
            " equal beats"
        )
    spacing_steps = steps_per_bar // grid_per_bar
    if tolerance_steps < 0 or 2 * tolerance_steps >= spacing_steps:
        raise SettingsError(
            f"the drum-grid tolerance must be at least 0 steps and less than half the grid"
            f" spacing of {spacing_steps} steps; got {tolerance_steps}"
        )
    onsets, _, _ = _notes(active)
    if onsets.size == 0:
        return math.nan
    offset = (onsets % steps_per_bar) % spacing_steps  # (onsets,)
    distance = np.minimum(offset, spacing_steps - offset)
    return float(np.mean(distance <= tolerance_steps))


# --- Inter-track metric: tonal distance ------------------------------------------------------


def _tonal_matrix(r1: float = 1.0, r2: float = 1.0, r3: float = 0.5) -> np.ndarray:
    """Harte et al.'s 6 x 12 projection Φ of the 12 pitch classes onto three circles.

    Rows: (sin, cos) of l·7π/6 with radius r1 (circle of fifths), of l·3π/2 with radius r2
    (circle of minor thirds), of l·2π/3 with radius r3 (circle of major thirds), l = pitch class.
    Default radii are the ones [Harte2006] chose.
    """
    pitch_class = np.arange(NUM_PITCH_CLASSES)
    rows = []
    for radius, angle in ((r1, 7 * np.pi / 6), (r2, 3 * np.pi / 2), (r3, 2 * np.pi / 3)):
        rows.append(radius * np.sin(pitch_class * angle))
        rows.append(radius * np.cos(pitch_class * angle))
    return np.stack(rows)  # (6, 12)


def tonal_centroid(chroma: np.ndarray) -> np.ndarray:
    """Tonal centroid of a chroma vector, after Harte, Sandler and Gasser (2006).

    Formula: ζ(d) = (1 / ||c||_1) Σ_{l=0}^{11} Φ(d, l) c(l), d = 0..5, where Φ is the tonal
    matrix (see `_tonal_matrix`: fifths at 7π/6 radius 1, minor thirds at 3π/2 radius 1, major
    thirds at 2π/3 radius 0.5). A single pitch class l maps to its column Φ(:, l), whatever its
    weight. Every centroid is a convex combination of the columns, whose norm is
    sqrt(1 + 1 + 0.25) = 1.5, so ||ζ|| <= 1.5 and two centroids are at most 3 apart.

    Args:
        chroma: (..., 12), non-negative weights of the pitch classes C, C#, ..., B.

    Returns:
        (..., 6). NaN where the chroma is all zero: silence has no tonal centre (a zero vector
        would put silence at the centre of every circle and make it "close" to everything).

    Reference: [Harte2006] eq. (1)-(2).
    """
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.ndim < 1 or chroma.shape[-1] != NUM_PITCH_CLASSES:
        raise SettingsError(
            f"a chroma must have 12 pitch classes on its last axis; got {chroma.shape}"
        )
    if np.any(chroma < 0):
        raise SettingsError("a chroma cannot hold negative weights")
    total = chroma.sum(axis=-1, keepdims=True)  # (..., 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = np.where(total > 0, chroma / total, np.nan)  # (..., 12)
    return normalised @ _tonal_matrix().T  # (..., 6)


def tonal_distance(roll_a: np.ndarray, roll_b: np.ndarray, windows_per_bar: int = 4) -> float:
    """Tonal Distance (TD) between two tracks: the mean Euclidean distance of their centroids.

    Each bar is cut into `windows_per_bar` equal windows; in each window w both tracks get a
    chroma (`bar_chroma` of the window) and a tonal centroid, and
        TD = mean over windows w where both tracks sound of ||ζ_a(w) - ζ_b(w)||_2.
    Windows where either track is silent are skipped (their centroid is undefined).

    The default of 4 windows is one window per beat of a 4/4 bar, as MuseGAN computes chroma
    per beat (24 of its 96 steps per bar) [Dong2018]; windows_per_bar=1 gives one per bar.
    Deviation: MuseGAN's first code drops a whole bar when one beat of it is silent; here only the
    silent window is dropped. TD lies in [0, 3] (see `tonal_centroid`); the paper's "0-5" is a
    loose bound.

    Args:
        roll_a: (bars, steps_per_bar, 128), first track (not drums).
        roll_b: same shape, second track (not drums).
        windows_per_bar: windows per bar; steps_per_bar must be a multiple of it.

    Returns:
        TD in [0, 3]; NaN when no window has both tracks sounding. 0 for a track and itself.

    Reference: [Harte2006]; [Dong2018] "TD: tonal distance" (harmonicity between a pair of
    tracks); HarmonyCloak §5.1.
    """
    active_a = _active_bars(roll_a)
    active_b = _active_bars(roll_b)
    if active_a.shape != active_b.shape:
        raise SettingsError(
            f"two tracks must have the same shape to be compared; got {active_a.shape} and"
            f" {active_b.shape}"
        )
    steps_per_bar = active_a.shape[1]
    if windows_per_bar < 1 or steps_per_bar % windows_per_bar != 0:
        raise SettingsError(
            f"a bar of {steps_per_bar} time steps cannot be split into {windows_per_bar} equal"
            " windows"
        )
    window_shape = (-1, steps_per_bar // windows_per_bar, NUM_PITCHES)
    centroid_a = tonal_centroid(bar_chroma(active_a.reshape(window_shape)))  # (windows, 6)
    centroid_b = tonal_centroid(bar_chroma(active_b.reshape(window_shape)))  # (windows, 6)
    distance = np.linalg.norm(centroid_a - centroid_b, axis=-1)  # (windows,), NaN if silent
    both_sound = ~np.isnan(distance)
    if not both_sound.any():
        return math.nan
    return float(distance[both_sound].mean())


# --- All metrics of a multi-track roll, and the paper's table row -----------------------------


def track_metrics(
    multi_roll: np.ndarray,
    track_names: Sequence[str],
    drum_flags: Sequence[bool],
    *,
    min_steps: int = 3,
    grid_per_bar: int = 16,
    tolerance_steps: int = 0,
    windows_per_bar: int = 4,
) -> dict[str, dict]:
    """Every metric of the paper's Tables 3 and 4 for one multi-track roll.

    EB for every track; UPC and QN for every pitched (non-drum) track; DP for every drum
    track; TD for every pair of pitched tracks, in `itertools.combinations` order of the
    given tracks (drums have no pitch classes, and the paper's Table 4 leaves them out).

    Args:
        multi_roll: (tracks, bars, steps_per_bar, 128).
        track_names: one name per track, e.g. ("Bass", "Drums", "Guitar", "Piano", "Strings").
        drum_flags: one bool per track, True for a drum track.
        min_steps, grid_per_bar, tolerance_steps, windows_per_bar: passed on to
            `qualified_note_ratio`, `drum_pattern_ratio` and `tonal_distance`.

    Returns:
        {"empty_bar_ratio": {name: EB}, "used_pitch_classes_per_bar": {name: UPC},
         "qualified_note_ratio": {name: QN}, "drum_pattern_ratio": {name: DP},
         "tonal_distance": {(name_a, name_b): TD}}; values are floats, NaN where undefined.
    """
    rolls = np.asarray(multi_roll)
    if rolls.ndim != 4 or rolls.shape[-1] != NUM_PITCHES:
        raise SettingsError(
            "a multi-track piano roll must have shape (tracks, bars, steps_per_bar, 128); got"
            f" {tuple(rolls.shape)}"
        )
    if not len(track_names) == len(drum_flags) == rolls.shape[0]:
        raise SettingsError(
            f"the roll has {rolls.shape[0]} tracks but {len(track_names)} track names and"
            f" {len(drum_flags)} drum flags were given"
        )
    if len(set(track_names)) != len(track_names):
        raise SettingsError(f"track names must be distinct; got {list(track_names)}")
    tracks = list(zip(track_names, rolls, drum_flags))
    pitched = [(name, roll) for name, roll, is_drum in tracks if not is_drum]
    drums = [(name, roll) for name, roll, is_drum in tracks if is_drum]
    return {
        "empty_bar_ratio": {name: empty_bar_ratio(roll) for name, roll, _ in tracks},
        "used_pitch_classes_per_bar": {
            name: used_pitch_classes_per_bar(roll) for name, roll in pitched
        },
        "qualified_note_ratio": {
            name: qualified_note_ratio(roll, min_steps) for name, roll in pitched
        },
        "drum_pattern_ratio": {
            name: drum_pattern_ratio(roll, grid_per_bar, tolerance_steps) for name, roll in drums
        },
        "tonal_distance": {
            (name_a, name_b): tonal_distance(roll_a, roll_b, windows_per_bar)
            for (name_a, roll_a), (name_b, roll_b) in itertools.combinations(pitched, 2)
        },
    }


def bar_descriptors(multi_roll: np.ndarray) -> np.ndarray:
    """What each bar of a multi-track roll holds, as a vector: the set of them is what a
    Fréchet distance between two bodies of music compares (`bench.unlearnability.midi_measures`).

    Per bar, with M tracks, 12 + 3M values, each in [0, 1]:
      * the bar's pitch-class profile: `bar_chroma` summed over the tracks, divided by its
        total (all zeros for a silent bar): which keys and chords the music dwells in;
      * per track, the share of the bar's steps in which it sounds: rhythm and rests;
      * per track, its used pitch classes over 12 (UPC of this one bar, 0 when silent);
      * per track, the mean of its active pitches over 127 (0 when silent): register.

    Args:
        multi_roll: (tracks, bars, steps_per_bar, 128).

    Returns:
        float array (bars, 12 + 3 · tracks).
    """
    rolls = np.asarray(multi_roll)
    if rolls.ndim != 4 or rolls.shape[-1] != NUM_PITCHES:
        raise SettingsError(
            f"a multi-track piano roll must have shape (tracks, bars, steps_per_bar, 128); got {tuple(rolls.shape)}"
        )
    active = rolls > 0  # (M, bars, S, 128)
    chroma = np.stack([bar_chroma(track) for track in active])  # (M, bars, 12)
    total = chroma.sum(axis=0)  # (bars, 12)
    cells = total.sum(axis=1, keepdims=True)
    profile = np.divide(total, cells, out=np.zeros_like(total), where=cells > 0)
    sounding = active.any(axis=3).mean(axis=2).T  # (bars, M)
    used = (chroma > 0).sum(axis=2).T / NUM_PITCH_CLASSES  # (bars, M)
    per_pitch = active.any(axis=2)  # (M, bars, 128)
    count = per_pitch.sum(axis=2)
    pitch_sum = (per_pitch * np.arange(NUM_PITCHES)).sum(axis=2)
    register = np.divide(pitch_sum, count * (NUM_PITCHES - 1.0), out=np.zeros(count.shape), where=count > 0).T
    return np.concatenate([profile, sounding, used, register], axis=1)


def paper_table_row(metrics: dict[str, dict]) -> dict[str, float]:
    """Flatten `track_metrics` output into one table row, in the paper's units and order.

    Columns, in order: "EB (%) <track>" for every track, "UPC <track>", "QN (%) <track>",
    "DP (%) <track>", "TD <track_a>-<track_b>". Ratios (EB, QN, DP) are multiplied by 100 as
    in the paper's Table 3; UPC and TD are left as they are (Tables 3 and 4). NaN stays NaN.

    Args:
        metrics: the dict `track_metrics` returns.

    Returns:
        Ordered {column label: value}.
    """
    row: dict[str, float] = {}
    for key, label, scale in (
        ("empty_bar_ratio", "EB (%)", 100.0),
        ("used_pitch_classes_per_bar", "UPC", 1.0),
        ("qualified_note_ratio", "QN (%)", 100.0),
        ("drum_pattern_ratio", "DP (%)", 100.0),
    ):
        for name, value in metrics[key].items():
            row[f"{label} {name}"] = value * scale
    for (name_a, name_b), value in metrics["tonal_distance"].items():
        row[f"TD {name_a}-{name_b}"] = value
    return row
