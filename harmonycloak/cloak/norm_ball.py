"""Unshaped noise inside an L2 or L∞ ball: the baselines of paper Fig. 6–7 (no psychoacoustics).

A third parameterisation of δ for the one min-min optimiser (`optim.minmin`), beside the
dominant-tone and masked cloaks: one free value per sample of every lane, bounded per block
of `block_ms` relative to the music in that block, so that the budget reads as a noise-to-
music power ratio ρ (the same unit as the Gaussian baseline's budget):

* L∞: δ_n = ε · tanh(p_n), ε = √ρ · RMS(x_block), hence ‖δ‖∞ ≤ ε and the noise power is at
  most ρ times the music's power in the block.
* L2: δ_block = ε₂ · p_block / max(‖p_block‖₂, ε₂'), scaled so that ‖δ_block‖₂ ≤ √ρ ·
  ‖x_block‖₂ (the projection onto the ball, written as a rescaling of the free vector).

Neither bound follows the music's spectrum: this is what the paper compares the cloak to.
Shapes: L lanes, N samples, K blocks, B segments, S samples per segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.errors import SettingsError
from harmonycloak.resampling import resample

NORMS = ("l2", "linf")


@dataclass(frozen=True)
class NormBallSettings:
    norm: str = "linf"  # "l2" or "linf"
    power_ratio: float = 0.05  # ρ: noise power at most this share of the music's, per block (0.05 ≈ 13 dB SNR)
    block_ms: float = 80.0  # the ball is stated per block of this length (segments are whole blocks)
    initial_scale: float = 0.1  # std of the initial free values

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise SettingsError(f"the norm must be one of {', '.join(NORMS)}, not '{self.norm}'")
        if not self.power_ratio > 0:
            raise SettingsError("the noise power budget must be positive")


class NormBallCloak(nn.Module):
    """Noise with one free parameter per lane and sample, inside a per-block norm ball.

    Args:
        lanes: clean music, (L, N) at `sample_rate_hz`.
        sample_rate_hz: rate of `lanes`.
        settings: see `NormBallSettings`.
        generator: seeds the initial free values.
    """

    keeps_loudness = False  # its noise is written as optimised (`cloak.loudness` is the masked cloak's)

    def __init__(self, lanes: Tensor, sample_rate_hz: int, settings: NormBallSettings = NormBallSettings(),
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.sample_rate_hz = sample_rate_hz
        self.block_samples = max(round(settings.block_ms * sample_rate_hz / 1000), 1)
        num_blocks = -(-lanes.shape[-1] // self.block_samples)
        padded = torch.nn.functional.pad(lanes, (0, num_blocks * self.block_samples - lanes.shape[-1]))
        blocks = padded.reshape(lanes.shape[0], num_blocks, self.block_samples)  # (L, K, block)
        music_l2 = blocks.double().square().sum(-1).sqrt().float()  # (L, K)
        self.register_buffer("l2_bound", math.sqrt(settings.power_ratio) * music_l2)  # (L, K)
        self.register_buffer("linf_bound", self.l2_bound / math.sqrt(self.block_samples))  # √ρ · RMS, (L, K)
        self.free = nn.Parameter(settings.initial_scale * torch.randn(*blocks.shape, generator=generator,
                                                                      dtype=blocks.dtype))

    def active_share(self) -> float:
        """Share of blocks whose norm ball holds any noise (blocks of digital silence hold none)."""
        return float((self.l2_bound > 0).float().mean())

    @property
    def alignment_samples(self) -> int:
        return self.block_samples

    def block_noise(self, block_index: Tensor) -> Tensor:
        """Noise of the blocks `block_index` (...,) → (L, ..., block), inside the ball; past the end: zero."""
        valid = block_index < self.free.shape[1]
        index = block_index.clamp(max=self.free.shape[1] - 1)
        free = self.free[:, index]  # (L, ..., block)
        if self.settings.norm == "linf":
            noise = self.linf_bound[:, index, None] * torch.tanh(free)
        else:
            bound = self.l2_bound[:, index, None]
            norm = (free.square().sum(-1, keepdim=True) + 1e-20).sqrt()
            # Free vectors of L2 norm ≤ 1 are scaled by the bound; longer ones are projected onto the sphere.
            noise = bound * free / torch.clamp(norm, min=1.0)
        return noise * valid[..., None]

    def noise(self, starts: Tensor, num_samples: int) -> Tensor:
        """Noise of the segments starting at `starts` (B,), shape (B, L, num_samples), differentiable."""
        per_segment = -(-num_samples // self.block_samples)
        index = (starts // self.block_samples)[:, None] + torch.arange(per_segment, device=starts.device)  # (B, K')
        noise = self.block_noise(index)  # (L, B, K', block)
        return noise.reshape(*noise.shape[:2], -1)[..., :num_samples].transpose(0, 1)

    @torch.no_grad()
    def render(self, sample_rate_hz: int, num_frames: int) -> np.ndarray:
        """The whole noise at any sample rate, (L, num_frames) float32 (band-limited resampling)."""
        index = torch.arange(self.free.shape[1], device=self.free.device)
        noise = self.block_noise(index).reshape(self.free.shape[0], -1).double().cpu().numpy()
        noise = resample(noise, self.sample_rate_hz, sample_rate_hz)
        out = np.zeros((noise.shape[0], num_frames), np.float32)
        out[:, : min(num_frames, noise.shape[1])] = noise[:, :num_frames]
        return out
