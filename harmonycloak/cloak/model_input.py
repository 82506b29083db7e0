"""Music → model input: the one place that cuts music into what the models read.

Audio: mono segments of `segment_samples` at the working rate, tiling each song; the last
segment ends at the song's end, and a song shorter than one segment is padded with silence.
MIDI: phrases of `bars` bars, each bar a slot of `steps_per_bar` steps (a pickup
right-aligned, a short bar padded, see `PianoRoll.bars`), tiling the score's multi-track
piano roll, the last ending at its last bar. The roll has one row per *instrument*: the
tracks of one name, program and drum flag are parts of one instrument and are summed (as the
Lakh Pianoroll Dataset merges the tracks of an instrument family), clipped at 1. A cloak layer
is named and voiced as its track, so it is read as a part of that instrument: no name sets it
apart for an attacker to drop.

Protection (the cloak problems), training (`harmonycloak train`), verification (the twin
surrogates) and the benchmark all cut music here.

Shapes: N samples, S segments, M tracks, I instruments, T = bars × steps_per_bar steps, 128 pitches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from harmonycloak.models.interface import PhraseLayout
from harmonycloak.music import PianoRoll, Score, ticks_to_steps
from harmonycloak.resampling import to_working_rate
from harmonycloak.settings import WORKING_RATE_HZ


def segment_starts(num_samples: int, segment_samples: int) -> Tensor:
    """Starts of segments tiling [0, num_samples): every `segment_samples`, the last ending at the end.

    Needs num_samples >= segment_samples; with an aligned length the starts stay aligned.
    """
    last = num_samples - segment_samples
    starts = list(range(0, last + 1, segment_samples))
    if starts[-1] != last:
        starts.append(last)
    return torch.tensor(starts, dtype=torch.long)


def audio_crops(mono: Tensor | np.ndarray, starts: Tensor, segment_samples: int) -> Tensor:
    """One song (N,) → the windows of `segment_samples` at `starts` (S,) int64, (S, segment_samples)
    float32; what lies past the song's end is silence."""
    mono = torch.as_tensor(np.ascontiguousarray(mono, dtype=np.float32) if isinstance(mono, np.ndarray) else mono)
    end_samples = int(starts.max()) + segment_samples if len(starts) else 0
    mono = torch.nn.functional.pad(mono, (0, max(end_samples - mono.shape[-1], 0)))
    return mono[starts[:, None] + torch.arange(segment_samples)]


def audio_segments(mono: Tensor | np.ndarray, segment_samples: int) -> Tensor:
    """One song (N,) → segments tiling it, (S, segment_samples) float32."""
    starts = segment_starts(max(len(mono), segment_samples), segment_samples)
    return audio_crops(mono, starts, segment_samples)


def songs_segments(songs: Sequence[Tensor | np.ndarray], segment_samples: int) -> Tensor:
    """Segments of every song, stacked in order: (S, segment_samples); (0, segment_samples) for none."""
    if not songs:
        return torch.zeros(0, segment_samples)
    return torch.cat([audio_segments(song, segment_samples) for song in songs])


def working_rate_mono(samples: np.ndarray, sample_rate_hz: int, working_rate_hz: int = WORKING_RATE_HZ) -> np.ndarray:
    """What the models hear of a recording: (channels, N) → the mono mix (N',) at the working rate."""
    return to_working_rate(np.asarray(samples, dtype=np.float32).mean(axis=0), sample_rate_hz, working_rate_hz)


def longest_bar_steps(score: Score, steps_per_beat: int) -> int:
    """Steps of the longest bar of ``score`` at ``steps_per_beat``."""
    return int(np.diff(ticks_to_steps(score.bar_lines_tick, steps_per_beat, score.ticks_per_beat)).max(initial=1))


def phrase_steps(roll: PianoRoll, steps_per_bar: int, bars_per_segment: int) -> Tensor:
    """Which step of ``roll`` each cell of each phrase reads, int64 (segments, T); ``roll.num_steps``
    (one past the end: pad the roll with a silent step) where the phrase has padding.

    Bar slots are laid out by `PianoRoll.bars` itself, run on a roll of step numbers; phrases of
    ``bars_per_segment`` bars tile the piece, the last ending at its last bar (a piece shorter
    than a phrase is followed by silent bars).
    """
    num_steps = roll.num_steps
    step_numbers = np.arange(1, num_steps + 1, dtype=np.float32).reshape(1, num_steps, 1)
    slots = replace(roll, velocities=step_numbers).bars(steps_per_bar)[0, :, :, 0].astype(np.int64) - 1
    if slots.shape[0] < bars_per_segment:
        slots = np.concatenate([slots, np.full((bars_per_segment - slots.shape[0], steps_per_bar), -1)])
    starts = segment_starts(slots.shape[0], bars_per_segment)
    segment_steps = torch.from_numpy(slots)[starts[:, None] + torch.arange(bars_per_segment)].flatten(1)
    return torch.where(segment_steps < 0, num_steps, segment_steps)


def phrases_of(velocities: Tensor, segment_steps: Tensor) -> Tensor:
    """Roll (M, S, 128) → phrases (B, M, T, 128) at ``segment_steps`` (B, T), S reading silence."""
    padded = torch.cat([velocities, torch.zeros_like(velocities[:, :1])], dim=1)
    return padded[:, segment_steps].transpose(0, 1)


def track_instruments(names: Sequence[str], programs: Sequence[int], is_drum: Sequence[bool]) -> Tensor:
    """The instrument of each track (M,) int64: tracks of one name, program and drum flag are
    parts of one instrument, numbered in the order their first part comes."""
    first: dict[tuple[str, int, bool], int] = {}
    return torch.tensor([first.setdefault((name, int(program), bool(drum)), len(first))
                         for name, program, drum in zip(names, programs, is_drum, strict=True)], dtype=torch.long)


def instrument_rolls(velocities: Tensor, instrument: Tensor) -> Tensor:
    """Track rolls (M, S, 128) → instrument rolls (I, S, 128): the parts of each instrument summed
    (not clipped: the caller clips once everything is added)."""
    count = int(instrument.max()) + 1 if len(instrument) else 0
    return velocities.new_zeros((count, *velocities.shape[1:])).index_add(0, instrument.to(velocities.device),
                                                                          velocities)


def score_instruments(score: Score) -> Tensor:
    """`track_instruments` of a score's tracks, (M,) int64."""
    return track_instruments([t.name for t in score.tracks], [t.program for t in score.tracks],
                             [t.is_drum for t in score.tracks])


def score_phrases(score: Score, layout: PhraseLayout) -> Tensor:
    """Phrases (B, I, T, 128) of velocity / 127 tiling a score, one row per instrument (cloak
    layers are parts of their track's instrument)."""
    roll = score.piano_roll(layout.steps_per_beat)
    velocities = instrument_rolls(torch.from_numpy(roll.velocities), score_instruments(score)).clamp(max=1.0)
    return phrases_of(velocities, phrase_steps(roll, layout.steps_per_bar, layout.bars))


def scores_phrases(scores: Sequence[Score], layout: PhraseLayout) -> Tensor:
    """Phrases of every score, stacked in order: (B, M, T, 128); an empty tensor for none."""
    if not scores:
        return torch.zeros(0)
    return torch.cat([score_phrases(score, layout) for score in scores])
