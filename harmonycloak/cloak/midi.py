"""The paper's MIDI cloak (§4.1, Eq. 5-7): quiet notes at each window's dominant note.

For every pitched track m the music is cut into non-overlapping windows of `window_ms`
(10 ms by default) in *seconds*; the tempo map turns window edges into ticks and piano-roll
steps. In each window t:

1. the **cumulative velocity** of pitch p is ``Σ_notes velocity · overlap_s / window_s`` over
   the track's notes of pitch p (a note filling the window counts its velocity once);
2. the **dominant note** is the note of the pitch with the largest cumulative velocity
   (ties: the lowest pitch; of several notes of that pitch, the one overlapping most);
   below `silence_threshold_velocity` the window has no dominant note and gets no noise;
3. the noise sits **at that note's pitch ν_t**, with a velocity δ_t kept by a sigmoid inside
   Eq. 7: ``H(T_H(ν_t)) ≤ δ_t ≤ M(x_t)``, where T_H is the threshold in quiet (Eq. 2), H
   turns dB SPL into a velocity by the DLS Level 1 curve (`psycho.functional.db_spl_to_velocity`,
   the paper's garbled Eq. 6 read as docs/paper-reading.md says; L_127 = `full_velocity_db_spl`) and
   M(x_t) is the dominant note's velocity, lowered by the strength's headroom in dB (DLS:
   ``v · 10^(−headroom/40)``, the strength's headroom: `settings.headroom_db("midi", strength)`).

**How the noise is expressed in MIDI: added quiet notes, not velocity changes.** Why:
* a chorale's notes all have velocity 64 and the models read (near-)binary rolls, so a
  cloak made of velocity changes moved the surrogates' loss by almost nothing (an earlier
  attempt measured it); an added note is an event of its own in every reader's view;
* a velocity change is heard on the whole note, louder or softer, and within Eq. 7 it could
  halve the note; a quiet note under a loud note of the same pitch is masked by it;
* the source file stays as it was, event for event: the cloak is a layer beside it.

MIDI gives a note one velocity, so the windows in which one note stays dominant (a *run*)
share one noise parameter and become one added note (a `BODY`), clipped to the dominant
note. A body only makes the note's roll cells louder, ``v/127 → (v + δ)/127``; to put the
noise where the models see a new event, a run that ends with its note also gets a `TAIL`: a
quiet note at the same pitch for `tail_ms` after the note ends, where that pitch is free in
the track (paper §4.1, design rationale 2: noise "positioned close to the masking music
tunes for effective temporal masking, particularly when they cannot be played together";
post-masking lasts 100-200 ms, docs/paper-reading.md). A tail is cut where the pitch sounds again and
at the end of the piece; `lead_ms` does the same before a note (pre-masking is only a few
ms, so it is off by default). Pieces shorter than a roll step are dropped, so the file holds
nothing the models never saw. Each piece has its own velocity inside its run's bounds.

A note cannot be added at a pitch its own channel is already playing (readers would pair
the messages differently), so each cloaked track gets a **cloak layer**: a new track chunk on
a free channel, with the track's name and program. Readers (pretty_midi, symusic, miditok) see
one more part of that instrument, and nothing in its name sets it apart: an attacker who drops
tracks by name drops the instrument's own part with it. The models read the parts of one
instrument (one name and program) summed into one row of the roll, clipped at 1
(`model_input.track_instruments`), as the Lakh Pianoroll Dataset merges an instrument family's. Drum tracks get no noise (a pitch there is
a drum, not a frequency). With more pitched tracks than free channels, the tracks with the
most cumulative velocity are cloaked first and the rest are named in the report.

Velocities are optimised as reals inside ``[max(⌈H⌉, 1), ⌊M⌋]`` and rounded for the file, so
the rounded value stays inside Eq. 7; a run whose range holds no integer gets no noise.

Shapes: R added notes (pieces of runs), M tracks, S roll steps, T windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.cloak.bounds import sigmoid_between
from harmonycloak.errors import SettingsError
from harmonycloak.music import Notes, Score, Track, note_steps, ticks_to_steps
from harmonycloak.psycho.functional import absolute_threshold_db_spl, db_spl_to_velocity
from harmonycloak.settings import DEFAULT_WINDOW_MS, check_window_ms

MELODIC_CHANNELS = 15  # 16 MIDI channels, channel 10 kept for drums
LEAD, BODY, TAIL = 0, 1, 2  # where an added note sits against its dominant note


@dataclass(frozen=True)
class MidiCloakSettings:
    window_ms: float = DEFAULT_WINDOW_MS  # window length (paper default; 5-100 ms allowed, §5.2.5)
    headroom_db: float = 32.0  # an added note stays this far (DLS dB) under its dominant note: settings.headroom_db
    silence_threshold_velocity: float = 8.0  # cumulative velocity under which a window has no dominant note
    # Level in dB SPL of a velocity-127 note: the L_127 of the DLS curve. Measured: FluidSynth with
    # the FluidR3 GM piano at gain 1.0 plays A4 at velocity 127 at −18.3 dBFS (sine-equivalent
    # RMS), i.e. 77.7 dB SPL with a full-scale sine at 96 dB SPL; velocity 64 and 16 came out
    # 11.9 and 36.0 dB lower, as DLS Level 1's 40 log10(v/127) says.
    full_velocity_db_spl: float = 78.0
    initial_parameter: float = -2.0  # sigmoid logit at the start: 12 % of the way up the range
    # Temporal masking (paper §4.1, design rationale 2: noise "positioned close to the masking
    # music tunes ... particularly when they cannot be played together"): an added note may begin
    # this long before its dominant note and end this long after it, where its pitch is free.
    lead_ms: float = 0.0
    tail_ms: float = 100.0
    during_note: bool = True  # an added note also sounds with its dominant note (in the roll: a louder cell)

    def __post_init__(self) -> None:
        check_window_ms(self.window_ms)
        if self.headroom_db < 0:
            raise SettingsError(f"the headroom cannot be negative, not {self.headroom_db} dB")


def pitch_to_hz(pitch: np.ndarray | Tensor) -> Tensor:
    """Equal-tempered frequency of MIDI pitches, A4 (69) = 440 Hz, float64 tensor."""
    return 440.0 * torch.pow(2.0, (torch.as_tensor(pitch, dtype=torch.float64) - 69.0) / 12.0)


def hearing_threshold_velocity(pitch: np.ndarray | Tensor, full_velocity_db_spl: float) -> Tensor:
    """H(T_H(ν)) of Eq. 7 (float64, shape of ``pitch``): the velocity at which a note of this
    pitch reaches the threshold in quiet, by the DLS Level 1 curve."""
    return db_spl_to_velocity(absolute_threshold_db_spl(pitch_to_hz(pitch)), full_velocity_db_spl)


def dominant_notes(notes: Notes, start_s: np.ndarray, end_s: np.ndarray, num_windows: int, window_s: float,
                   silence_threshold_velocity: float) -> tuple[np.ndarray, np.ndarray]:
    """Dominant note of each window of one track.

    Args:
        notes: the track's notes; start_s, end_s: their times in seconds, float64 (notes,).

    Returns:
        (note index of the window's dominant note, -1 where none: int64 (T,),
         cumulative velocity of the dominant pitch: float64 (T,)).
    """
    cumulative = np.zeros((num_windows, 128), dtype=np.float32)  # float32, int32: 1.5 kB a window, 92 MB for 10 min
    best_overlap = np.zeros((num_windows, 128), dtype=np.float32)
    best_note = np.full((num_windows, 128), -1, dtype=np.int32)
    for index in range(len(notes)):
        start, end = start_s[index], end_s[index]
        if end <= start:
            continue
        first = int(start // window_s)
        last = min(int(math.ceil(end / window_s)), num_windows)  # exclusive
        if first >= last:
            continue
        edges = np.arange(first, last + 1) * window_s
        share = (np.minimum(end, edges[1:]) - np.maximum(start, edges[:-1])).clip(min=0.0) / window_s  # (windows,)
        pitch = int(notes.pitch[index])
        cumulative[first:last, pitch] += float(notes.velocity[index]) * share
        better = share > best_overlap[first:last, pitch]
        best_overlap[first:last, pitch] = np.where(better, share, best_overlap[first:last, pitch])
        best_note[first:last, pitch] = np.where(better, index, best_note[first:last, pitch])
    pitch = cumulative.argmax(axis=1)  # ties: the lowest pitch
    level = cumulative[np.arange(num_windows), pitch]
    dominant = best_note[np.arange(num_windows), pitch]
    return np.where(level >= silence_threshold_velocity, dominant, -1).astype(np.int64), level.astype(np.float64)


@dataclass
class DominantRuns:
    """Runs of windows with one dominant note, one added note each. All int64/float64 (R,).

    Attributes:
        track: index of the track in the score.
        pitch, start_tick, end_tick: the added note (the dominant note's pitch, the run's span
            clipped to the dominant note).
        note_velocity: the dominant note's velocity, M(x_t).
        first_window, num_windows: which windows the run covers.
        kind: `LEAD` (before the dominant note), `BODY` (with it) or `TAIL` (after it).
    """

    track: np.ndarray
    pitch: np.ndarray
    start_tick: np.ndarray
    end_tick: np.ndarray
    note_velocity: np.ndarray
    first_window: np.ndarray
    num_windows: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return int(self.track.shape[0])


def find_runs(score: Score, tracks: list[int], settings: MidiCloakSettings) -> tuple[DominantRuns, int]:
    """Dominant-note runs of the given tracks of ``score``; returns (runs, windows per track)."""
    window_s = settings.window_ms / 1000.0
    num_windows = max(int(math.ceil(score.duration_s / window_s)), 1)
    columns: list[list] = [[] for _ in range(8)]
    tempo = score.tempo_map
    for track_index in tracks:
        notes = score.tracks[track_index].notes
        start_s, end_s = tempo.tick_to_seconds(notes.start_tick), tempo.tick_to_seconds(notes.end_tick)
        dominant, _ = dominant_notes(notes, start_s, end_s, num_windows, window_s, settings.silence_threshold_velocity)
        changes = np.flatnonzero(np.diff(dominant, prepend=-2, append=-2))  # run boundaries
        first_column = len(columns[0])
        for first, stop in zip(changes[:-1], changes[1:]):
            note = int(dominant[first])
            if note < 0:
                continue
            run_start_s, run_end_s = first * window_s, stop * window_s
            pitch = notes.pitch[note]
            same_pitch = (notes.pitch == pitch) & (np.arange(len(notes)) != note)
            note_start, note_end = int(notes.start_tick[note]), int(notes.end_tick[note])
            body_start = note_start if start_s[note] >= run_start_s else int(round(float(tempo.seconds_to_tick(run_start_s))))
            body_end = note_end if end_s[note] <= run_end_s else int(round(float(tempo.seconds_to_tick(run_end_s))))
            pieces = [(body_start, body_end, BODY)] if settings.during_note else []
            if body_start == note_start and settings.lead_ms > 0:  # the run starts with its note: a lead-in
                earlier = same_pitch & (notes.start_tick <= note_start)
                floor = max(int(notes.end_tick[earlier].max(initial=0)), 0)
                lead = int(round(float(tempo.seconds_to_tick(max(start_s[note] - settings.lead_ms / 1000.0, 0.0)))))
                pieces.append((max(lead, floor), note_start, LEAD))
            if body_end == note_end and settings.tail_ms > 0:  # the run ends with its note: a tail
                later = same_pitch & (notes.start_tick >= note_start)
                ceiling = int(notes.start_tick[later].min(initial=score.end_tick))  # the piece ends where it did
                tail = int(round(float(tempo.seconds_to_tick(end_s[note] + settings.tail_ms / 1000.0))))
                pieces.append((note_end, min(tail, ceiling), TAIL))
            for start, end, kind in pieces:
                for column, value in zip(columns, (track_index, int(pitch), start, end, int(notes.velocity[note]),
                                                   int(first), int(stop - first), kind)):
                    column.append(value)
        _separate_same_pitch(columns, first_column)
    arrays = [np.asarray(column, dtype=np.int64) for column in columns]
    keep = arrays[3] > arrays[2]
    return DominantRuns(*(array[keep] for array in arrays)), num_windows


def _separate_same_pitch(columns: list[list], first: int) -> None:
    """End each added note of one track no later than the next added note of its pitch starts
    (a lead-in and a tail can meet in the gap between two notes of one pitch), in place."""
    pitch, start, end = (np.asarray(column[first:], dtype=np.int64) for column in columns[1:4])
    order = np.lexsort((start, pitch))
    for previous, following in zip(order[:-1], order[1:]):
        if pitch[previous] == pitch[following] and end[previous] > start[following]:
            columns[3][first + previous] = int(start[following])


def cloaked_tracks(score: Score) -> tuple[list[int], list[int]]:
    """(tracks that get a cloak layer, pitched tracks left without one for lack of channels).

    Pitched tracks are ranked by cumulative velocity (velocity × beats), highest first, and take
    the melodic channels the file leaves free."""
    pitched = [index for index, track in enumerate(score.tracks) if not track.is_drum and len(track.notes)]
    used = {track.channel for track in score.tracks if track.channel is not None and track.channel != 9}
    unassigned = sum(1 for track in score.tracks if track.channel is None and not track.is_drum)  # get one when written
    free = MELODIC_CHANNELS - len(used) - unassigned

    def weight(index: int) -> float:
        notes = score.tracks[index].notes
        return float((notes.velocity.astype(np.float64) * (notes.end_tick - notes.start_tick)).sum())

    ranked = sorted(pitched, key=lambda index: (-weight(index), index))
    return sorted(ranked[:max(free, 0)]), sorted(ranked[max(free, 0):])


class MidiDominantCloak(nn.Module):
    """One velocity logit per added note (a piece of a dominant-note run); the noise as piano-roll
    cells and as MIDI notes.

    Args:
        score: the clean music.
        steps_per_beat: piano-roll resolution the models read.
        settings: see `MidiCloakSettings`.
    """

    def __init__(self, score: Score, steps_per_beat: int, settings: MidiCloakSettings = MidiCloakSettings()) -> None:
        super().__init__()
        self.settings = settings
        self.steps_per_beat = steps_per_beat
        self.tracks_cloaked, self.tracks_without_channel = cloaked_tracks(score)
        runs, self.num_windows = find_runs(score, self.tracks_cloaked, settings)
        lower = hearing_threshold_velocity(runs.pitch, settings.full_velocity_db_spl)
        upper = torch.as_tensor(runs.note_velocity, dtype=torch.float64) * 10.0 ** (-settings.headroom_db / 40.0)
        lower_integer, upper_integer = torch.ceil(lower).clamp(min=1.0), torch.floor(upper)
        keep = (upper_integer >= lower_integer).numpy()  # a run needs an integer velocity in range
        starts, ends = (ticks_to_steps(ticks, steps_per_beat, score.ticks_per_beat) for ticks in (runs.start_tick, runs.end_tick))
        keep &= ends > starts  # and at least one step of the roll (else the file would hold what the models never saw)
        self.runs = DominantRuns(*(getattr(runs, name)[keep] for name in DominantRuns.__dataclass_fields__))
        self.register_buffer("lower_velocity", lower_integer[torch.from_numpy(keep)].float())  # (R,)
        self.register_buffer("upper_velocity", upper_integer[torch.from_numpy(keep)].float())  # (R,)
        self.register_buffer("hearing_threshold_velocity", lower[torch.from_numpy(keep)].float())  # (R,) H(T_H), unrounded
        self.velocity_logit = nn.Parameter(torch.full((len(self.runs),), settings.initial_parameter))
        # Roll cells of each run: the added note's steps at its pitch, as `Score.piano_roll` lays it out.
        starts, ends = note_steps(self.runs.start_tick, self.runs.end_tick, steps_per_beat, score.ticks_per_beat)
        lengths = ends - starts
        run_of_cell = np.repeat(np.arange(len(self.runs)), lengths)
        step = np.repeat(starts, lengths) + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths))
        self.register_buffer("cell_run", torch.from_numpy(run_of_cell))  # (cells,)
        self.register_buffer("cell_track", torch.from_numpy(self.runs.track[run_of_cell]))
        self.register_buffer("cell_step", torch.from_numpy(step))
        self.register_buffer("cell_pitch", torch.from_numpy(self.runs.pitch[run_of_cell]))
        self.ticks_per_beat = score.ticks_per_beat

    @property
    def num_runs(self) -> int:
        return len(self.runs)

    def velocity(self) -> Tensor:
        """Noise velocity of each run (R,), real-valued inside [max(⌈H(T_H)⌉, 1), ⌊M⌋] (Eq. 7)."""
        return sigmoid_between(self.velocity_logit, self.lower_velocity, self.upper_velocity)

    def quantised_velocity(self) -> np.ndarray:
        """The velocities written to the file: rounded, int64 (R,), still inside the bounds."""
        with torch.no_grad():
            rounded = torch.round(self.velocity()).clamp(self.lower_velocity, self.upper_velocity)
        return rounded.long().cpu().numpy()

    def noise_roll(self, num_tracks: int, num_steps: int, velocity: Tensor | None = None) -> Tensor:
        """The noise as a roll (M, S, 128) of velocity / 127, differentiable in the velocities.

        Where two runs of one track meet on one step (a run shorter than a step), the cell
        keeps the louder, as `Score.piano_roll` does for the layer's notes."""
        velocity = self.velocity() if velocity is None else velocity
        roll = torch.zeros(num_tracks * num_steps * 128, dtype=velocity.dtype, device=velocity.device)
        inside = self.cell_step < num_steps
        index = ((self.cell_track * num_steps + self.cell_step) * 128 + self.cell_pitch)[inside]
        values = (velocity / 127.0)[self.cell_run[inside]]
        roll = roll.scatter_reduce(0, index, values, reduce="amax", include_self=True)
        return roll.view(num_tracks, num_steps, 128)

    def layer_tracks(self, score: Score) -> list[Track]:
        """The cloak layers to add to ``score``: one `Track` per cloaked track with runs, no channel yet."""
        velocity = self.quantised_velocity()
        layers = []
        for track_index in self.tracks_cloaked:
            mine = self.runs.track == track_index
            if not mine.any():
                continue
            source = score.tracks[track_index]
            notes = Notes.from_arrays(self.runs.pitch[mine], velocity[mine], self.runs.start_tick[mine],
                                      self.runs.end_tick[mine])
            layers.append(Track(name=source.name, program=source.program, is_drum=False, notes=notes,
                                port=source.port))
        return layers


def protected_score(score: Score, cloak: MidiDominantCloak) -> Score:
    """``score`` with the cloak layers added as new tracks (the source's own notes untouched)."""
    protected = score.copy()
    protected.tracks = protected.tracks + cloak.layer_tracks(score)
    return protected
