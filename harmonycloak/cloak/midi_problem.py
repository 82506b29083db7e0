"""The MIDI cloaking problem handed to the optimiser: clean roll, MIDI cloak, phrases.

The models read phrases (`cloak.model_input`: ``layout.bars`` bars, each a slot of
``layout.steps_per_bar`` steps, a pickup right-aligned, a short bar padded), cut from the whole
multi-track roll ``x ∈ [0,1]^(M×S×128)``, one row per instrument (`model_input.track_instruments`:
the tracks of one name and program, summed). Phrases tile the piece, the last one ending at its
last bar (the paper's unit is the bar, §4.1 footnote 2). The protected roll is the clean
roll plus the cloak's noise roll, clipped at 1: each cloak layer, named and voiced as its
track, is summed into that track's instrument as a reader of the protected file sums it (see
`cloak.midi`).

Regulariser of Eq. 5 per phrase: Σ_m w^m ‖δ^m‖₂² / ‖x^m‖₂² over the phrase's cells, the noise
measured against the track's own music by the audio problem's `noise_power_ratio` (why
squared: see `cloak.problem`), with
w^m = 1 − (track m's share of the total cumulative velocity), the sum of its roll's cells
(velocity × steps). With one track w = 1 (the formula would switch the regulariser off).
"Track" here is the models' row, an instrument.

Shapes: B phrases, M instruments (the models' tracks), S steps of the whole roll,
T = layout.bars × layout.steps_per_bar.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from harmonycloak.cloak.midi import MidiDominantCloak
from harmonycloak.cloak.model_input import instrument_rolls, phrase_steps, phrases_of, score_instruments
from harmonycloak.cloak.problem import noise_power_ratio
from harmonycloak.models.interface import PhraseLayout
from harmonycloak.music import Score

ROLL_NORM_FLOOR = 1e-6  # norm under which a track's phrase counts as silent


def velocity_weights(velocities: np.ndarray) -> Tensor:
    """w^m per track (M,): one minus the track's share of the roll's total cumulative velocity."""
    cumulative = torch.as_tensor(velocities, dtype=torch.float64).sum(dim=(1, 2))
    if cumulative.shape[0] == 1:
        return torch.ones(1)
    return (1.0 - cumulative / cumulative.sum().clamp(min=1e-30)).float()


class MidiCloakProblem:
    """Clean roll + `MidiDominantCloak` → protected phrases, for `optim.minmin.optimise_noise`.

    Args:
        score: the clean music.
        cloak: built on the same score, at the steps per beat the models read.
        layout: the phrases the models read (their bar slot and bars per phrase).
    """

    def __init__(self, score: Score, cloak: MidiDominantCloak, layout: PhraseLayout) -> None:
        roll = score.piano_roll(cloak.steps_per_beat)
        self.cloak = cloak
        self.instrument = score_instruments(score)  # (tracks of the score,): the row each is read in
        names: dict[int, str] = {}  # each instrument by its first part's name
        for track, row in enumerate(self.instrument.tolist()):
            names.setdefault(row, roll.track_names[track])
        self.track_names = list(names.values())
        self.clean_roll = instrument_rolls(torch.from_numpy(roll.velocities), self.instrument).clamp(max=1.0)  # (M, S, 128)
        self.weights = velocity_weights(self.clean_roll.numpy())
        self.segment_steps = phrase_steps(roll, layout.steps_per_bar, layout.bars)  # (segments, T)

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
        self.instrument = self.instrument.to(device)
        self.segment_steps = self.segment_steps.to(device)
        return self

    def _phrases(self, roll: Tensor, segment_ids: Tensor) -> Tensor:
        """(M, S, 128) → (B, M, T, 128) phrases of the segments."""
        return phrases_of(roll, self.segment_steps[segment_ids.to(self.segment_steps.device)])

    def clean_batch(self, segment_ids: Tensor) -> Tensor:
        return self._phrases(self.clean_roll, segment_ids)

    def noise_roll(self, velocity: Tensor | None = None) -> Tensor:
        """The cloak's noise in the models' rows (M, S, 128): each layer in its track's instrument."""
        return instrument_rolls(self.cloak.noise_roll(len(self.instrument), self.num_steps, velocity), self.instrument)

    def protected_roll(self, velocity: Tensor | None = None) -> Tensor:
        """The whole protected roll (M, S, 128): clean + noise, clipped at 1."""
        return (self.clean_roll + self.noise_roll(velocity)).clamp(max=1.0)

    def protected_batch(self, segment_ids: Tensor, velocity: Tensor | None = None) -> tuple[Tensor, Tensor]:
        noise = self.noise_roll(velocity)
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
