"""What every generative model offers the rest of harmonycloak: the optimiser, training,
verification and the benchmark speak to models only through these contracts.

A model reads *inputs* (a waveform batch (B, N) for audio, phrases (B, M, T, 128) for MIDI),
turns them into *features* with its front end (log-mel frames, a piano roll, ...), and has a
generative loss L_gen per example on them (paper Eq. 3 and 4). Models with equal
`feature_key` compute equal features, so one front-end pass can serve several of them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn


TRAINING_STREAM_SEED = 0  # the random stream of `GenerativeTraining.training_step`


class GenerativeModel(Protocol):
    """A generative model the noise can be optimised against, and an attacker can train."""

    @property
    def family(self) -> str:
        """Registry family name ("ar-transformer", "musegan", ...)."""

    @property
    def kind(self) -> str:
        """What it reads: "audio" (waveforms at `sample_rate_hz`) or "midi" (piano-roll phrases)."""

    @property
    def feature_key(self) -> Hashable:
        """Equal keys mean equal features."""

    def features(self, inputs: Tensor) -> Tensor:
        """Inputs (B, ...) → the features the model's loss reads (B, ...)."""

    def loss_from_features(self, features: Tensor) -> Tensor:
        """L_gen per example (B,)."""

    def predict(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(what the model outputs, what it should output), both (B, T, F)."""

    def generative_loss(self, inputs: Tensor) -> Tensor:
        """L_gen per example (B,) of inputs (B, ...), differentiable with respect to the inputs."""

    def training_loss(self, inputs: Tensor, generator: torch.Generator) -> Tensor:
        """The family's training objective on a batch, a scalar; what it draws at random (diffusion
        steps, contrastive crops) it draws from `generator`."""

    def training_step(self, inputs: Tensor, optimiser: torch.optim.Optimizer) -> object:
        """One step of the family's own training on a batch (the min-min loop's outer step over θ);
        returns its loss (a GAN: both networks' losses)."""

    # the nn.Module parts the flows use
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def to(self, *args, **kwargs) -> "GenerativeModel": ...
    def requires_grad_(self, requires_grad: bool = True) -> "GenerativeModel": ...


class AudioModel(GenerativeModel, Protocol):
    @property
    def sample_rate_hz(self) -> int:
        """The rate of the waveforms it reads."""


@dataclass(frozen=True)
class PhraseLayout:
    """How a symbolic model reads music: bars of `steps_per_bar` steps (a 4/4 bar fills one), `bars` per phrase."""

    steps_per_bar: int
    bars: int

    @property
    def steps_per_beat(self) -> int:
        return self.steps_per_bar // 4


class SymbolicModel(GenerativeModel, Protocol):
    @property
    def phrase_layout(self) -> PhraseLayout:
        """The phrases it reads."""

    @property
    def num_tracks(self) -> int:
        """M, the tracks of every phrase."""


class GenerativeTraining:
    """Training of models that minimise a loss of their own (every family but the GAN).

    The objective is the mean generative loss unless the family defines its own `training_loss`
    (diffusion: one random step per example; contrastive: random crops, in-batch negatives).
    The min-min loop's outer step draws from a stream of the model's own, seeded with
    `TRAINING_STREAM_SEED`, so that it is the same on every run.
    """

    def training_loss(self, inputs: Tensor, generator: torch.Generator) -> Tensor:
        return self.generative_loss(inputs).mean()

    def training_step(self, inputs: Tensor, optimiser: torch.optim.Optimizer) -> float:
        stream = self.__dict__.setdefault("_training_stream", torch.Generator().manual_seed(TRAINING_STREAM_SEED))
        optimiser.zero_grad(set_to_none=True)
        loss = self.training_loss(inputs, stream)
        loss.backward()
        optimiser.step()
        return loss.item()


class AudioModelIdentity:
    """What every audio model says of itself alike: its kind, and its family from `self.config`.
    Each model adds `sample_rate_hz` and `feature_key` from where its own config keeps them."""

    kind = "audio"

    @property
    def family(self) -> str:
        return self.config.family


class FrozenPretrainedPart:
    """A model that reads through a pretrained part it never trains (the codec of a codec LM,
    the encoder a diffusion model is conditioned on): the part stays in eval mode and frozen
    from construction on (`frozen`: an encoder left in training mode until the first `train()`
    computes through other kernels, and the rounding of a training then hangs on whether
    anything toggled the mode), and the zoo loads its weights with `attach_pretrained`.
    `FROZEN_PART` names the attribute; `PART_DESCRIPTION` says what it is, for the error a
    wrong part gets."""

    FROZEN_PART: str
    PART_DESCRIPTION: str

    @staticmethod
    def frozen(part: nn.Module) -> nn.Module:
        """`part` with no parameter that trains, in eval mode: what the model reads it as."""
        return part.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        getattr(self, self.FROZEN_PART).eval()
        return self

    def attach_pretrained(self, name: str, model: nn.Module) -> None:
        """Load the pretrained part's weights into the frozen part (a zoo dependency)."""
        from harmonycloak.errors import ModelError

        part = getattr(self, self.FROZEN_PART)
        if type(model) is not type(part) or model.config != part.config:
            raise ModelError(f"the {self.family} model needs {self.PART_DESCRIPTION} of config {part.config}, "
                             f"not {name!r}")
        self.frozen(part).load_state_dict(model.state_dict())


def is_audio_model(model: GenerativeModel) -> bool:
    return model.kind == "audio"


def is_symbolic_model(model: GenerativeModel) -> bool:
    return model.kind == "midi"
