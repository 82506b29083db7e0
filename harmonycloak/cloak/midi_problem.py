"""The MIDI cloaking problem handed to the optimiser: clean roll, MIDI cloak, phrases.

The models read phrases of ``bars_per_segment`` bars, each bar a slot of ``steps_per_bar``
steps (`PianoRoll.bars`: a pickup right-aligned, a short bar padded), cut from the whole
multi-track roll ``x ∈ [0,1]^(M×S×128)``. Phrases tile the piece, the last one ending at its
last bar (the paper's unit is the bar, §4.1 footnote 2). The protected roll is the clean
roll plus the cloak's noise roll, clipped at 1 (each cloak layer summed into its track, see
`cloak.midi`).

Regulariser of Eq. 5 per phrase: Σ_m w^m ‖δ^m‖₂² / ‖x^m‖₂² over the phrase's cells, the noise
measured against the track's own music by the audio problem's `noise_power_ratio` (why
squared: see `cloak.problem`), with
w^m = 1 − (track m's share of the total cumulative velocity), the sum of its roll's cells
(velocity × steps). With one track w = 1 (the formula would switch the regulariser off).

Shapes: B phrases, M tracks, S steps of the whole roll, T = bars_per_segment × steps_per_bar.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from harmonycloak.cloak.midi import MidiDominantCloak
from harmonycloak.cloak.problem import noise_power_ratio, segment_starts
from harmonycloak.music import PianoRoll, Score

ROLL_NORM_FLOOR = 1e-6  # norm under which a track's phrase counts as silent


def velocity_weights(velocities: np.ndarray) -> Tensor:
    """w^m per track (M,): one minus the track's share of the roll's total cumulative velocity."""
    cumulative = torch.as_tensor(velocities, dtype=torch.float64).sum(dim=(1, 2))
    if cumulative.shape[0] == 1:
        return torch.ones(1)
    return (1.0 - cumulative / cumulative.sum().clamp(min=1e-30)).float()


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


class MidiCloakProblem:
    """Clean roll + `MidiDominantCloak` → protected phrases, for `optim.minmin.optimise_noise`.

    Args:
        score: the clean music.
        cloak: built on the same score, at the steps per beat the models read.
        steps_per_bar: slot length of a bar, as the models read it.
        bars_per_segment: bars per phrase.
    """

    def __init__(self, score: Score, cloak: MidiDominantCloak, steps_per_bar: int, bars_per_segment: int) -> None:
        roll = score.piano_roll(cloak.steps_per_beat)
        self.cloak = cloak
        self.track_names = roll.track_names
        self.clean_roll = torch.from_numpy(roll.velocities)  # (M, S, 128)
        self.weights = velocity_weights(roll.velocities)
        self.segment_steps = phrase_steps(roll, steps_per_bar, bars_per_segment)  # (segments, T)

    @property
    def num_segments(self) -> int:
        return int(self.segment_steps.shape[0])

    @property
    def num_tracks(self) -> int:
        return int(self.clean_roll.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.clean_roll.shape[1])

    def noise_parameters(self) -> list[Tensor]:
        return [p for p in self.cloak.parameters() if p.requires_grad]

    def to(self, device: torch.device) -> "MidiCloakProblem":
        self.cloak.to(device)
        self.clean_roll, self.weights = self.clean_roll.to(device), self.weights.to(device)
        self.segment_steps = self.segment_steps.to(device)
        return self

    def _phrases(self, roll: Tensor, segment_ids: Tensor) -> Tensor:
        """(M, S, 128) → (B, M, T, 128) phrases of the segments."""
        return phrases_of(roll, self.segment_steps[segment_ids.to(self.segment_steps.device)])

    def clean_batch(self, segment_ids: Tensor) -> Tensor:
        return self._phrases(self.clean_roll, segment_ids)

    def protected_roll(self, velocity: Tensor | None = None) -> Tensor:
        """The whole protected roll (M, S, 128): clean + noise, clipped at 1."""
        noise = self.cloak.noise_roll(self.num_tracks, self.num_steps, velocity)
        return (self.clean_roll + noise).clamp(max=1.0)

    def protected_batch(self, segment_ids: Tensor, velocity: Tensor | None = None) -> tuple[Tensor, Tensor]:
        noise = self.cloak.noise_roll(self.num_tracks, self.num_steps, velocity)
        inputs = self._phrases((self.clean_roll + noise).clamp(max=1.0), segment_ids)
        ratio = noise_power_ratio(self._phrases(noise, segment_ids), self._phrases(self.clean_roll, segment_ids),
                                  (2, 3), ROLL_NORM_FLOOR)  # (B, M)
        return inputs, ratio @ self.weights

    def _written_velocity(self) -> Tensor:
        return torch.as_tensor(self.cloak.quantised_velocity(), dtype=self.clean_roll.dtype, device=self.clean_roll.device)

    def written_batch(self, segment_ids: Tensor) -> Tensor:
        """Protected phrases with the velocities rounded as they are written to the file."""
        return self.protected_batch(segment_ids, self._written_velocity())[0]

    def written_roll(self) -> Tensor:
        """The whole protected roll (M, S, 128) with the velocities as written to the file."""
        with torch.no_grad():
            return self.protected_roll(self._written_velocity())
