"""Tests of harmonycloak.metrics.symbolic.

Expected values come from hand counts (worked out in the comments), from closed forms computed
here with `math`, from properties (Harte et al. 2006), from muspy 0.5's metrics where their
definitions coincide with ours, and from a Bach chorale read by music21.

Where muspy 0.5 coincides and where it does not:
- muspy.empty_measure_rate ~ EB, but muspy counts the bar in which a note's exclusive end
  falls (a note ending on a bar line marks the next bar as sounding) and cannot see silent
  bars after the last note. Compared on rolls where no note ends on a bar line and the last bar
  sounds.
- muspy.n_pitch_classes_used on a one-bar piece = our UPC of that bar (exactly).
- muspy has no qualified-note rate; its piano-roll decoder (from_pianoroll_representation)
  finds notes independently of ours, so QN is checked on its notes.
- muspy.drum_in_pattern_rate(music, "duple") at resolution steps_per_bar / 4 marks 4 positions
  per beat = our 16-per-bar grid with tolerance 0 (exactly). muspy.drum_pattern_consistency
  also tries a triple-meter grid and keeps the larger rate, so it is only an upper bound.
- muspy.empty_beat_rate (beats, not bars), n_pitches_used (pitches, not pitch classes, over the
  whole piece) and pitch_class_entropy measure other things: not compared.
- Tonal distance has no muspy counterpart; it is checked against closed forms.
"""

from __future__ import annotations

import itertools
import math

import muspy
import numpy as np
import pytest

from harmonycloak.errors import SettingsError
from harmonycloak.metrics.symbolic import (
    bar_chroma,
    bar_descriptors,
    drum_pattern_ratio,
    empty_bar_ratio,
    paper_table_row,
    qualified_note_ratio,
    tonal_centroid,
    tonal_distance,
    track_metrics,
    used_pitch_classes_per_bar,
)

C4, E4, G4 = 60, 64, 67


def make_roll(bars: int, steps_per_bar: int, notes, velocity: float = 0.8) -> np.ndarray:
    """A (bars, steps_per_bar, 128) roll holding `notes` = [(pitch, start_step, length_steps)],
    steps counted from the start of the roll (bar lines ignored)."""
    flat = np.zeros((bars * steps_per_bar, 128), np.float32)
    for pitch, start, length in notes:
        flat[start : start + length, pitch] = velocity
    return flat.reshape(bars, steps_per_bar, 128)


def phi(pitch_class: int) -> np.ndarray:
    """Harte et al.'s tonal-space point of one pitch class, written out from the paper."""
    k = pitch_class
    return np.array([
        math.sin(k * 7 * math.pi / 6), math.cos(k * 7 * math.pi / 6),  # fifths, r1 = 1
        math.sin(k * 3 * math.pi / 2), math.cos(k * 3 * math.pi / 2),  # minor thirds, r2 = 1
        0.5 * math.sin(k * 2 * math.pi / 3), 0.5 * math.cos(k * 2 * math.pi / 3),  # major 3rds
    ])


def chord_point(*pitch_classes: int) -> np.ndarray:
    """Centroid of equally weighted pitch classes = mean of their points."""
    return np.mean([phi(k) for k in pitch_classes], axis=0)


def one_hot_chroma(*pitch_classes: int) -> np.ndarray:
    chroma = np.zeros(12)
    chroma[list(pitch_classes)] = 1.0
    return chroma


# --- Empty bars ------------------------------------------------------------------------------


def test_empty_bar_ratio_counts_silent_bars():
    # 4 bars of 16 steps: a note in bar 0, a very soft note in bar 2; bars 1 and 3 silent.
    roll = make_roll(4, 16, [(C4, 0, 4)])
    roll[2, 5, E4] = 0.01
    assert empty_bar_ratio(roll) == 0.5  # 2 empty / 4


def test_empty_bar_ratio_note_over_bar_line_fills_both_bars():
    # Steps 14..17 span the end of bar 0 and the start of bar 1: no bar is empty.
    assert empty_bar_ratio(make_roll(2, 16, [(C4, 14, 4)])) == 0.0


def test_empty_bar_ratio_edges():
    assert empty_bar_ratio(np.zeros((3, 16, 128), bool)) == 1.0
    assert math.isnan(empty_bar_ratio(np.zeros((0, 16, 128))))


# --- Used pitch classes ----------------------------------------------------------------------


def test_used_pitch_classes_per_bar_averages_over_sounding_bars():
    notes = [
        # bar 0 (steps 0..15): C, E, G in two octaves -> pitch classes {C, E, G} = 3
        (C4, 0, 4), (E4, 0, 4), (G4, 0, 4), (C4 + 12, 4, 4), (E4 + 12, 8, 4), (G4 + 12, 12, 4),
        # bar 1: silent, left out
        # bar 2 (steps 32..47): C#3 and C#5 -> {C#} = 1
        (49, 32, 8), (73, 40, 8),
    ]
    roll = make_roll(3, 16, notes)
    assert used_pitch_classes_per_bar(roll) == 2.0  # (3 + 1) / 2 sounding bars


def test_used_pitch_classes_per_bar_all_twelve_and_silence():
    chromatic = make_roll(1, 16, [(60 + k, k, 1) for k in range(12)])
    assert used_pitch_classes_per_bar(chromatic) == 12.0
    assert math.isnan(used_pitch_classes_per_bar(np.zeros((2, 16, 128))))


# --- Qualified notes -------------------------------------------------------------------------


def test_qualified_note_ratio_hand_counted_lengths():
    # Notes of 1, 2, 3 and 5 steps: the ones of 3 and 5 qualify -> 2 / 4.
    roll = make_roll(1, 16, [(60, 0, 1), (62, 0, 2), (64, 0, 3), (65, 0, 5)])
    assert qualified_note_ratio(roll) == 0.5
    assert qualified_note_ratio(roll, min_steps=1) == 1.0
    assert qualified_note_ratio(roll, min_steps=6) == 0.0


def test_qualified_note_ratio_note_over_bar_line_is_one_note():
    # Steps 6..9 with 8 steps per bar: 2 steps in bar 0 + 2 in bar 1 = one note of 4 steps.
    # (Cut at the bar line it would be two unqualified notes of 2 steps and QN would be 0.)
    assert qualified_note_ratio(make_roll(2, 8, [(C4, 6, 4)])) == 1.0


def test_qualified_note_ratio_gap_splits_notes():
    # Steps 0-1 and 3-5 at one pitch, step 2 silent: notes of 2 and 3 steps -> 1 / 2.
    assert qualified_note_ratio(make_roll(1, 16, [(C4, 0, 2), (C4, 3, 3)])) == 0.5


def test_qualified_note_ratio_edges():
    assert math.isnan(qualified_note_ratio(np.zeros((2, 16, 128))))
    with pytest.raises(SettingsError):
        qualified_note_ratio(np.zeros((2, 16, 128)), min_steps=0)


# --- Drum pattern ----------------------------------------------------------------------------

# 2 bars of 96 steps; 16-grid spacing 6 steps, 8-grid spacing 12 steps.
# onset (global step) -> position in bar, position mod 6, distance to the 16-grid:
#   0 -> 0, 0, 0   (kick held 3 steps: one onset)
#   6 -> 6, 0, 0
#   7 -> 7, 1, 1
#  13 -> 13, 1, 1
#  33 -> 33, 3, 3
#  94 -> 94, 4, 2  (held to step 97: crosses the bar line, no second onset at 96)
# 143 -> 47, 5, 1
DRUM_NOTES = [(36, 0, 3), (38, 6, 1), (42, 7, 1), (42, 13, 1), (38, 33, 1), (46, 94, 4),
              (42, 143, 1)]


def test_drum_pattern_ratio_hand_counted_onsets():
    roll = make_roll(2, 96, DRUM_NOTES)
    assert drum_pattern_ratio(roll) == pytest.approx(2 / 7)  # distance 0: steps 0, 6
    assert drum_pattern_ratio(roll, tolerance_steps=1) == pytest.approx(5 / 7)  # + 7, 13, 143
    assert drum_pattern_ratio(roll, tolerance_steps=2) == pytest.approx(6 / 7)  # + 94
    # 8-grid: positions mod 12 are 0, 6, 7, 1, 9, 10, 11 -> only step 0 is on it.
    assert drum_pattern_ratio(roll, grid_per_bar=8) == pytest.approx(1 / 7)


def test_drum_pattern_ratio_edges():
    assert math.isnan(drum_pattern_ratio(np.zeros((2, 96, 128))))
    with pytest.raises(SettingsError):
        drum_pattern_ratio(np.zeros((2, 24, 128)), grid_per_bar=16)  # 24 steps / 16 beats
    with pytest.raises(SettingsError):
        drum_pattern_ratio(np.zeros((2, 96, 128)), tolerance_steps=3)  # half of spacing 6
    with pytest.raises(SettingsError):
        drum_pattern_ratio(np.zeros((2, 96, 128)), tolerance_steps=-1)


# --- Chroma and tonal centroid ---------------------------------------------------------------


def test_bar_chroma_counts_active_cells_per_pitch_class():
    # Bar 0: C4 for 3 steps, C5 for 1 step (loud), E4 for 2 steps, G9 (MIDI 127) for 1 step.
    roll = make_roll(2, 16, [(C4, 0, 3), (E4, 4, 2), (127, 9, 1)], velocity=0.2)
    roll[0, 7, 72] = 1.0
    expected = np.zeros((2, 12))
    expected[0, 0] = 3 + 1  # C
    expected[0, 4] = 2  # E
    expected[0, 7] = 1  # 127 = 10 * 12 + 7 -> G
    np.testing.assert_array_equal(bar_chroma(roll), expected)


@pytest.mark.parametrize("pitch_class", range(12))
def test_tonal_centroid_of_one_pitch_class_is_its_column(pitch_class):
    chroma = np.zeros(12)
    chroma[pitch_class] = 3.0  # any weight: the chroma is L1-normalised
    np.testing.assert_allclose(tonal_centroid(chroma), phi(pitch_class), atol=1e-12)
    assert np.linalg.norm(tonal_centroid(chroma)) == pytest.approx(1.5)  # sqrt(1 + 1 + 1/4)


def test_tonal_centroid_harte_relations():
    # Harte et al. 2006: relative major/minor and fifth-related chords lie close in tonal
    # space; a chord a tritone away lies far.
    c_major = tonal_centroid(one_hot_chroma(0, 4, 7))
    a_minor = tonal_centroid(one_hot_chroma(9, 0, 4))
    g_major = tonal_centroid(one_hot_chroma(7, 11, 2))
    f_sharp_major = tonal_centroid(one_hot_chroma(6, 10, 1))
    far = np.linalg.norm(c_major - f_sharp_major)
    assert np.linalg.norm(c_major - a_minor) < far
    assert np.linalg.norm(c_major - g_major) < far
    np.testing.assert_allclose(c_major, chord_point(0, 4, 7), atol=1e-12)


def test_tonal_centroid_batches_bounds_and_silence():
    rng = np.random.default_rng(0)
    chroma = rng.random((2, 3, 12))
    centroids = tonal_centroid(chroma)
    assert centroids.shape == (2, 3, 6)
    for i, j in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(centroids[i, j], tonal_centroid(chroma[i, j]))
    assert np.all(np.linalg.norm(centroids, axis=-1) <= 1.5 + 1e-12)
    assert np.all(np.isnan(tonal_centroid(np.zeros(12))))


def test_tonal_centroid_rejects_bad_chroma():
    with pytest.raises(SettingsError):
        tonal_centroid(-one_hot_chroma(0))
    with pytest.raises(SettingsError):
        tonal_centroid(np.ones(7))


# --- Tonal distance --------------------------------------------------------------------------


def test_tonal_distance_closed_form_c_against_g():
    # Two bars, C4 against G3 held throughout: every window is C vs G.
    roll_a = make_roll(2, 16, [(C4, 0, 32)])
    roll_b = make_roll(2, 16, [(55, 0, 32)])
    expected = float(np.linalg.norm(phi(0) - phi(7)))
    assert tonal_distance(roll_a, roll_b) == pytest.approx(expected)
    assert tonal_distance(roll_b, roll_a) == pytest.approx(expected)


def test_tonal_distance_skips_bars_where_a_track_is_silent():
    # Bar 0: C major against A minor. Bar 1: C major against silence -> skipped.
    roll_a = make_roll(2, 8, [(p, 0, 16) for p in (C4, E4, G4)])
    roll_b = make_roll(2, 8, [(p, 0, 8) for p in (57, C4, E4)])
    expected = float(np.linalg.norm(chord_point(0, 4, 7) - chord_point(9, 0, 4)))
    assert tonal_distance(roll_a, roll_b, windows_per_bar=1) == pytest.approx(expected)


def test_tonal_distance_windows():
    # One bar of 8 steps. A: C in steps 0-3, E in 4-7. B: C in steps 0-3, silent after.
    roll_a = make_roll(1, 8, [(C4, 0, 4), (E4, 4, 4)])
    roll_b = make_roll(1, 8, [(C4, 0, 4)])
    # Two windows: C vs C (0), then E vs silence (skipped) -> 0.
    assert tonal_distance(roll_a, roll_b, windows_per_bar=2) == pytest.approx(0.0, abs=1e-12)
    # One window: (C + E) / 2 vs C -> |phi(4) - phi(0)| / 2.
    expected = float(np.linalg.norm(phi(4) - phi(0))) / 2
    assert tonal_distance(roll_a, roll_b, windows_per_bar=1) == pytest.approx(expected)


def test_tonal_distance_self_bounds_and_silence():
    rng = np.random.default_rng(1)
    roll_a = rng.random((4, 16, 128)) > 0.9
    roll_b = rng.random((4, 16, 128)) > 0.95
    assert tonal_distance(roll_a, roll_a) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 < tonal_distance(roll_a, roll_b) <= 3.0
    assert math.isnan(tonal_distance(roll_a, np.zeros_like(roll_a)))


def test_tonal_distance_rejects_mismatched_rolls():
    with pytest.raises(SettingsError):
        tonal_distance(np.zeros((2, 16, 128)), np.zeros((3, 16, 128)))
    with pytest.raises(SettingsError):
        tonal_distance(np.zeros((2, 18, 128)), np.zeros((2, 18, 128)), windows_per_bar=4)


# --- All metrics of a multi-track roll -------------------------------------------------------


def test_track_metrics_and_table_row():
    # 2 bars of 32 steps.
    bass = make_roll(2, 32, [(36, 0, 4)])  # C2 in bar 0 only: EB 1/2, UPC 1, QN 1
    # Drum onsets at 0, 8, 16, 17; 16-grid spacing 2 -> 17 is off: DP 3/4; bar 1 empty: EB 1/2
    drums = make_roll(2, 32, [(36, 0, 1), (38, 8, 1), (36, 16, 1), (42, 17, 1)])
    # C major held 8 steps in bar 0, G4 for 2 steps in bar 1: EB 0, UPC (3 + 1) / 2 = 2,
    # notes of 8, 8, 8, 2 steps -> QN 3/4.
    piano = make_roll(2, 32, [(C4, 0, 8), (E4, 0, 8), (G4, 0, 8), (G4, 32, 2)])
    metrics = track_metrics(
        np.stack([bass, drums, piano]), ("Bass", "Drums", "Piano"), (False, True, False)
    )
    assert metrics["empty_bar_ratio"] == {"Bass": 0.5, "Drums": 0.5, "Piano": 0.0}
    assert metrics["used_pitch_classes_per_bar"] == {"Bass": 1.0, "Piano": 2.0}
    assert metrics["qualified_note_ratio"] == {"Bass": 1.0, "Piano": 0.75}
    assert metrics["drum_pattern_ratio"] == {"Drums": 0.75}
    # Beats of 8 steps: only beat 0 of bar 0 has both (C against C major).
    assert metrics["tonal_distance"].keys() == {("Bass", "Piano")}
    expected_td = float(np.linalg.norm(phi(0) - chord_point(0, 4, 7)))
    assert metrics["tonal_distance"][("Bass", "Piano")] == pytest.approx(expected_td)

    row = paper_table_row(metrics)
    assert list(row) == [
        "EB (%) Bass", "EB (%) Drums", "EB (%) Piano", "UPC Bass", "UPC Piano",
        "QN (%) Bass", "QN (%) Piano", "DP (%) Drums", "TD Bass-Piano",
    ]
    assert row["EB (%) Bass"] == 50.0
    assert row["UPC Piano"] == 2.0
    assert row["QN (%) Piano"] == 75.0
    assert row["DP (%) Drums"] == 75.0
    assert row["TD Bass-Piano"] == pytest.approx(expected_td)


def test_bar_descriptors_hand_counted():
    # Bar 0: track 0 plays C4 for 6 of 12 steps; track 1 holds E4 and G4 for all 12. Bar 1 silent.
    low = make_roll(2, 12, [(C4, 0, 6)])
    high = make_roll(2, 12, [(E4, 0, 12), (G4, 0, 12)])
    rows = bar_descriptors(np.stack([low, high]))
    assert rows.shape == (2, 12 + 3 * 2)
    profile = np.zeros(12)
    profile[[0, 4, 7]] = [6 / 30, 12 / 30, 12 / 30]  # cells: C 6, E 12, G 12
    expected = np.concatenate([profile, [6 / 12, 12 / 12], [1 / 12, 2 / 12], [C4 / 127, (E4 + G4) / 2 / 127]])
    np.testing.assert_allclose(rows[0], expected)
    np.testing.assert_array_equal(rows[1], np.zeros(18))  # a silent bar describes as zeros


def test_bar_descriptors_ignore_velocity_and_reject_a_single_track():
    roll = np.stack([make_roll(1, 8, [(C4, 0, 3)], velocity=0.2), make_roll(1, 8, [(G4, 2, 5)], velocity=1.0)])
    loud = np.where(roll > 0, 1.0, 0.0)
    np.testing.assert_array_equal(bar_descriptors(roll), bar_descriptors(loud))
    with pytest.raises(SettingsError):
        bar_descriptors(roll[0])


def test_track_metrics_rejects_bad_layout():
    rolls = np.zeros((2, 2, 16, 128))
    with pytest.raises(SettingsError):
        track_metrics(rolls, ("Bass",), (False,))
    with pytest.raises(SettingsError):
        track_metrics(rolls, ("Bass", "Bass"), (False, False))
    with pytest.raises(SettingsError):
        track_metrics(rolls[0], ("Bass", "Piano"), (False, False))


@pytest.mark.parametrize(
    "metric", [empty_bar_ratio, used_pitch_classes_per_bar, qualified_note_ratio,
               drum_pattern_ratio, bar_chroma]
)
@pytest.mark.parametrize("shape", [(64, 128), (2, 16, 12), (1, 2, 16, 128)])
def test_single_track_metrics_reject_bad_shapes(metric, shape):
    with pytest.raises(SettingsError):
        metric(np.zeros(shape))


# --- Cross-checks with muspy 0.5 -------------------------------------------------------------


def random_roll(rng, bars, steps_per_bar, n_notes, pitches=range(36, 84), max_steps=12):
    roll = np.zeros((bars * steps_per_bar, 128), bool)
    for _ in range(n_notes):
        start = rng.integers(bars * steps_per_bar)
        roll[start : start + rng.integers(1, max_steps + 1), rng.choice(list(pitches))] = True
    return roll.reshape(bars, steps_per_bar, 128)


def as_music(roll, steps_per_bar, is_drum=False):
    """The roll as a muspy.Music at 4 beats per bar, decoded by muspy itself."""
    return muspy.from_pianoroll_representation(
        np.asarray(roll, bool).reshape(-1, 128), resolution=steps_per_bar // 4,
        is_drum=is_drum, encode_velocity=False,
    )


@pytest.mark.parametrize("seed", range(10))
def test_empty_bar_ratio_matches_muspy_empty_measure_rate(seed):
    rng = np.random.default_rng(seed)
    roll = random_roll(rng, 8, 16, n_notes=6)
    roll[rng.random(8) < 0.3] = False  # silence some bars
    roll[:, -1] = False  # no note ends on a bar line (muspy would mark the next bar)
    roll[-1, 0, C4] = True  # the last bar sounds (muspy cannot see trailing silent bars)
    assert empty_bar_ratio(roll) == pytest.approx(muspy.empty_measure_rate(as_music(roll, 16), 16))


@pytest.mark.parametrize("seed", range(10))
def test_used_pitch_classes_matches_muspy_per_bar(seed):
    rng = np.random.default_rng(seed)
    roll = random_roll(rng, 6, 16, n_notes=12, pitches=range(128))
    roll[rng.random(6) < 0.3] = False
    muspy_counts = [muspy.n_pitch_classes_used(as_music(roll[b : b + 1], 16)) for b in range(6)]
    for b, count in enumerate(muspy_counts):
        ours = used_pitch_classes_per_bar(roll[b : b + 1])
        assert math.isnan(ours) if count == 0 else ours == count
    sounding = [count for count in muspy_counts if count > 0]
    expected = np.mean(sounding) if sounding else math.nan
    np.testing.assert_allclose(used_pitch_classes_per_bar(roll), expected)


@pytest.mark.parametrize("seed", range(10))
def test_qualified_note_ratio_matches_notes_decoded_by_muspy(seed):
    rng = np.random.default_rng(seed)
    roll = random_roll(rng, 4, 16, n_notes=20, pitches=range(60, 66), max_steps=6)
    durations = [note.duration for note in as_music(roll, 16).tracks[0].notes]
    assert qualified_note_ratio(roll) == pytest.approx(np.mean(np.array(durations) >= 3))


@pytest.mark.parametrize("steps_per_bar", [48, 96])
@pytest.mark.parametrize("seed", range(5))
def test_drum_pattern_ratio_matches_muspy_duple_pattern(seed, steps_per_bar):
    rng = np.random.default_rng(seed)
    roll = random_roll(rng, 4, steps_per_bar, n_notes=30, pitches=(36, 38, 42, 46), max_steps=2)
    grid_steps = steps_per_bar // 16  # add on-grid hits so both outcomes are common
    for _ in range(10):
        roll.reshape(-1, 128)[rng.integers(4 * 16) * grid_steps, rng.choice((36, 38))] = True
    music = as_music(roll, steps_per_bar, is_drum=True)
    ours = drum_pattern_ratio(roll)
    assert ours == pytest.approx(muspy.drum_in_pattern_rate(music, "duple"))
    # drum_pattern_consistency keeps the larger of the duple and triple rates.
    assert ours <= muspy.drum_pattern_consistency(music) + 1e-12


# --- Real music: a Bach chorale (music21's bundled corpus) -----------------------------------


@pytest.fixture(scope="module")
def chorale():
    """BWV 66.6, 4/4, as {voice: roll} at 24 steps per quarter (96 per bar, MuseGAN's), and
    {voice: [(start_step, end_step, pitches)]} straight from music21."""
    music21 = pytest.importorskip("music21")
    score = music21.corpus.parse("bach/bwv66.6")
    steps = int(round(score.highestTime * 24))
    bars = -(-steps // 96)
    rolls, events = {}, {}
    for part in score.parts:
        flat = np.zeros((bars * 96, 128), bool)
        events[part.partName] = []
        for note in part.flatten().notes:
            start = int(round(note.offset * 24))
            end = int(round((note.offset + note.quarterLength) * 24))
            pitches = [p.midi for p in note.pitches]
            flat[start:end, pitches] = True
            events[part.partName].append((start, end, pitches))
        rolls[part.partName] = flat.reshape(bars, 96, 128)
    return rolls, events


def test_chorale_upc_matches_pitch_classes_counted_by_music21(chorale):
    rolls, events = chorale
    for voice, roll in rolls.items():
        per_bar = []
        for b in range(roll.shape[0]):
            classes = {p % 12 for start, end, pitches in events[voice]
                       if start < (b + 1) * 96 and end > b * 96 for p in pitches}
            if classes:
                per_bar.append(len(classes))
        assert used_pitch_classes_per_bar(roll) == pytest.approx(np.mean(per_bar)), voice


def test_chorale_qualified_notes_and_harmony(chorale):
    rolls, events = chorale
    for voice, roll in rolls.items():
        # music21 says every note lasts at least 3 of our steps (a 32nd note) -> QN = 1.
        assert min(end - start for start, end, _ in events[voice]) >= 3
        assert qualified_note_ratio(roll) == 1.0
    # Bach's bass agrees with his soprano better than the same bass moved up a tritone.
    soprano, bass = rolls["Soprano"], rolls["Bass"]
    tritone_bass = np.roll(bass, 6, axis=-1)
    assert tonal_distance(soprano, bass) < tonal_distance(soprano, tritone_bass)
