"""SymphonyNet-style autoregressive transformer over multi-track piano-roll steps (scaled down).

The paper's second MIDI target (Table 2; Liu et al. 2022): a decoder-only transformer
trained on the negative log-likelihood of the next musical event (paper Eq. 3). Here one
*event* is one time step of the multi-track roll: the model reads steps 0..t and
predicts, for every (track, pitch) cell of step t+1, whether it sounds (a Bernoulli) and,
if it does, its velocity (a Gaussian of fixed spread). Eq. 3's likelihood of step t+1 is
the product of these over cells:

    −log f(x_{t+1} | x_{≤t}) = Σ_cells [ BCE(sounding logit, 1[x > 0])
                                          + 1[x > 0] (x − μ)² / (2 σ²) ]

up to the constant log(σ √(2π)) per sounding cell, dropped so that a perfect prediction
scores 0. The per-example loss is the mean over the predicted steps and the cells (nats
per cell), so its scale does not depend on the number of tracks or the segment length.
Inputs enter through a linear map of the velocities (a continuous event embedding: each
(track, pitch) cell owns a vector, scaled by its velocity), so the loss has a gradient
with respect to every velocity, and the noise (velocity changes, added quiet notes) can
be optimised.

What is kept from SymphonyNet, what is dropped, and why:
* kept: decoder-only causal transformer, pre-norm blocks; multi-track input with each
  instrument's cells embedded by their own weights and predicted by their own outputs;
  two of the three "3-D" positions (bar index and position within the bar), learned;
  the next-event NLL; AdamW at lr 3e-4 for attackers (§5.1).
* dropped: the MMR token encoding with Music-BPE (a 1,000-token vocabulary): tokens are
  discrete, and a velocity change or an added quiet note must reach the loss through a
  gradient; the third position (order of a note within a chord) has no meaning for a
  step that holds all notes at once. Linear attention: it serves SymphonyNet's 20k-token
  sequences; segments of a few hundred steps fit softmax attention.
* scale: SymphonyNet has 12 layers, 16 heads, width 512 (Appendix A.1), about 30M
  parameters. The default here has 4 layers, 8 heads, width 256 (feed-forward 1024):
  about 3.6M parameters for 4 tracks, an eighth, so that it trains on a 2-core CPU. The
  tiny preset (1 layer, 2 heads, width 32) serves the tests.

Inputs are fixed-length multi-bar segments starting on a bar line: (B, M, T, 128)
velocities in [0, 1], T ≤ max_bars × steps_per_bar.

Shapes: B batch, M tracks, T steps, C = M·128 cells per step, D model width.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.models.interface import GenerativeTraining, PhraseLayout

MIDI_PITCHES = 128
SYMPHONYNET_LEARNING_RATE = 3e-4  # AdamW, paper §5.1

MAX_SEGMENT_BARS = 4  # the segments it reads when protecting, verifying or training: at most this many bars


@dataclass(frozen=True)
class SymphonyNetConfig:
    tracks: int = 4  # M: instruments (4 for Bach chorales)
    steps_per_bar: int = 48  # time steps per bar; sets the position-in-bar embedding
    max_bars: int = 8  # longest segment in bars; sets the bar embedding
    width: int = 256  # D: model width (SymphonyNet: 512)
    layers: int = 4  # transformer blocks (SymphonyNet: 12)
    heads: int = 8  # attention heads (SymphonyNet: 16)
    velocity_std: float = 0.1  # σ of the velocity likelihood, in velocity units (1 = MIDI 127)

    def with_tracks(self, tracks: int) -> "SymphonyNetConfig":
        """The same model reading `tracks` tracks."""
        return replace(self, tracks=tracks)


class SymphonyNetModel(GenerativeTraining, nn.Module):
    """Continuous event embedding + bar/position embeddings + causal transformer + per-cell heads."""

    def __init__(self, config: SymphonyNetConfig) -> None:
        super().__init__()
        self.config = config
        cells = config.tracks * MIDI_PITCHES
        self.event_embedding = nn.Linear(cells, config.width)
        self.bar_embedding = nn.Embedding(config.max_bars, config.width)
        self.position_embedding = nn.Embedding(config.steps_per_bar, config.width)
        layer = nn.TransformerEncoderLayer(
            config.width, config.heads, dim_feedforward=4 * config.width, dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(config.width)
        self.head = nn.Linear(config.width, 2 * cells)  # per cell: sounding logit, velocity logit

    family = "symphonynet"
    kind = "midi"

    @property
    def phrase_layout(self) -> PhraseLayout:
        """Segments of up to `MAX_SEGMENT_BARS` bars (MuseGAN's phrase length) at its own steps per bar."""
        return PhraseLayout(self.config.steps_per_bar, min(MAX_SEGMENT_BARS, self.config.max_bars))

    @property
    def num_tracks(self) -> int:
        return self.config.tracks

    @property
    def feature_key(self) -> object:
        """Every model of this family reads the same step sequence of the same tracks."""
        return ("roll-steps", self.config.tracks)

    def features(self, rolls: Tensor) -> Tensor:
        """Rolls (B, M, T, 128) → step sequence (B, T, C)."""
        config = self.config
        max_steps = config.max_bars * config.steps_per_bar
        if rolls.ndim != 4 or rolls.shape[1] != config.tracks or rolls.shape[3] != MIDI_PITCHES \
                or not 2 <= rolls.shape[2] <= max_steps:
            raise ModelError(
                f"this SymphonyNet model reads {config.tracks} tracks × 2 to {max_steps} steps × {MIDI_PITCHES} "
                f"pitches, not a piano roll of shape {tuple(rolls.shape)}"
            )
        return rolls.transpose(1, 2).flatten(2)

    def next_step_parameters(self, steps: Tensor) -> tuple[Tensor, Tensor]:
        """Step sequence (B, T, C) → (sounding logits, velocity means in [0, 1]) of steps 1..T-1, each (B, T-1, C)."""
        length = steps.shape[1] - 1
        time = torch.arange(length, device=steps.device)
        hidden = (self.event_embedding(steps[:, :-1])
                  + self.bar_embedding(time // self.config.steps_per_bar)
                  + self.position_embedding(time % self.config.steps_per_bar))
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=steps.device, dtype=hidden.dtype)
        hidden = self.output_norm(self.blocks(hidden, mask=mask, is_causal=True))
        logits, velocity_logits = self.head(hidden).chunk(2, dim=-1)
        return logits, torch.sigmoid(velocity_logits)

    def predict(self, steps: Tensor) -> tuple[Tensor, Tensor]:
        """(expected velocity of each cell of the next step, actual next step), both (B, T-1, C)."""
        logits, velocity = self.next_step_parameters(steps)
        return torch.sigmoid(logits) * velocity, steps[:, 1:]

    def loss_from_features(self, steps: Tensor) -> Tensor:
        """Per-example NLL (B,) of the next steps (Eq. 3), in nats per cell (module doc)."""
        logits, velocity = self.next_step_parameters(steps)
        target = steps[:, 1:]
        sounding = (target > 0).to(target.dtype)  # a note exists or not: no gradient, by nature
        presence = F.binary_cross_entropy_with_logits(logits, sounding, reduction="none")
        loudness = sounding * (target - velocity).square() / (2 * self.config.velocity_std**2)
        return (presence + loudness).mean(dim=(1, 2))

    def generative_loss(self, rolls: Tensor) -> Tensor:
        """Per-example generative loss L_gen (paper Eq. 3) of a roll batch (B, M, T, 128), shape (B,)."""
        return self.loss_from_features(self.features(rolls))

    def generate(self, prompt: Tensor, num_steps: int, generator: torch.Generator) -> Tensor:
        """Continue rolls (B, M, T0, 128), T0 ≥ 1, by `num_steps` sampled steps → (B, M, T0 + num_steps, 128).

        Each cell of a new step sounds with its predicted probability, at its predicted
        velocity. No gradients; the caller sets train/eval mode.
        """
        config = self.config
        max_steps = config.max_bars * config.steps_per_bar
        if prompt.shape[2] < 1 or prompt.shape[2] + num_steps > max_steps:
            raise SettingsError(f"this SymphonyNet model writes at most {max_steps} steps, prompt included")
        steps = self.features(F.pad(prompt, (0, 0, 0, 1)))[:, :-1]  # (B, T0, C), shape checked
        with torch.no_grad():
            for _ in range(num_steps):
                padded = torch.cat([steps, torch.zeros_like(steps[:, :1])], dim=1)  # last row is never read
                logits, velocity = self.next_step_parameters(padded)
                probability = torch.sigmoid(logits[:, -1])
                sounding = torch.bernoulli(probability.cpu(), generator=generator).to(probability.device)
                steps = torch.cat([steps, (sounding * velocity[:, -1])[:, None]], dim=1)
        return steps.unflatten(2, (config.tracks, MIDI_PITCHES)).transpose(1, 2)
