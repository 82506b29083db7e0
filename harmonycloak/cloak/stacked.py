"""Two cloaks at once: noise under the masking threshold, and small level-neutral gains on the music.

The masked cloak adds a signal the music hides; the gain cloak (`cloak.gain`) changes the
balance of what already sounds. They spend different budgets: noise under the music moves the
log levels a model reads by little (noise 19 dB under a band changes its level by about
0.05 dB on average), where a gain of 1 dB moves them by 1 dB. Optimised together, each part
keeps its own bounds and the noise is their sum,

    δ = δ_masked + δ_gain

which the flow then writes as any masked noise: loudness-neutral, held to the band check.

Shapes: L lanes, B segments, S samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from harmonycloak.cloak.problem import render_whole_noise


class StackedCloak(nn.Module):
    """The sum of several cloaks' noise, each part inside its own bounds.

    Args:
        parts: cloaks built on the same lanes (L, N) at the same `sample_rate_hz` (`build_cloak`).
    """

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.sample_rate_hz = parts[0].sample_rate_hz
        self.keeps_loudness = any(part.keeps_loudness for part in parts)

    @property
    def alignment_samples(self) -> int:
        return math.lcm(*(part.alignment_samples for part in self.parts))

    def noise(self, starts: Tensor, num_samples: int) -> Tensor:
        """Σ of the parts' δ in the segments starting at `starts` (B,): (B, L, num_samples)."""
        return sum(part.noise(starts, num_samples) for part in self.parts)

    @torch.no_grad()
    def randomise(self, generator: torch.Generator) -> None:
        """Every part's random parameters (the benchmark's control), drawn in order."""
        for part in self.parts:
            part.randomise(generator)

    def active_share(self) -> float:
        """Share of cells in which some part may sound (the largest part's share)."""
        return max(part.active_share() for part in self.parts)

    def render(self, sample_rate_hz: int, num_frames: int) -> np.ndarray:
        """The whole δ at any sample rate, (L, num_frames) float32."""
        return render_whole_noise(self, sample_rate_hz, num_frames)
