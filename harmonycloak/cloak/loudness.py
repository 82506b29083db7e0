"""Noise that leaves the music's loudness where it was.

Integrated loudness is the gated mean, over 400 ms blocks, of the K-weighted power. Adding
noise δ to music x changes a block's power by

    ‖K(x + δ)‖² − ‖Kx‖² = 2⟨Kx, Kδ⟩ + ‖Kδ‖²

and the cross term, not the noise's own power, is what moves it: noise 20 dB under the music
adds 0.04 dB by its power, but noise partly in phase with the music (an optimiser finds that
raising the music's own level is one way to change what a model learns) adds several times
that. Taking from δ, block by block, its K-weighted projection on the music,

    δ' = δ − c(t)·x,    c = ⟨Kx, Kδ⟩ / ‖Kx‖²  per block, interpolated between block centres,

removes the cross term and leaves only the noise's own power: ‖δ'‖² = ‖δ‖² − c²‖x‖² in each
block, so the noise gets quieter, never louder. What is taken away is a copy of the music a
few percent of its level (c is at most the noise-to-music amplitude ratio, by Cauchy–Schwarz).

K-weighting is ITU-R BS.1770's two stages (a +4 dB shelf above 1.5 kHz, a high-pass at 38 Hz),
through pyloudnorm's biquads: the filters of the loudness measure (`metrics.perceptual.loudness_change_lu`,
pyloudnorm's meter).
"""

from __future__ import annotations

import numpy as np
from pyloudnorm import IIRfilter

BLOCK_S = 0.4  # the loudness measure's block (BS.1770)
BLOCK_HOP_S = 0.1  # its blocks overlap by three quarters


def k_weighted(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """BS.1770's K-weighting of (..., N) samples, float64."""
    shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate_hz, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, sample_rate_hz, "high_pass")
    return high_pass.apply_filter(shelf.apply_filter(np.asarray(samples, dtype=np.float64)))


def loudness_neutral(noise: np.ndarray, music: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """`noise` less its K-weighted projection on `music`, block by block: (L, N) each, float32 out.

    Per lane, c is the projection coefficient of each 400 ms block (hop 100 ms), placed at the
    block's centre and interpolated linearly between centres (held flat before the first and
    after the last); a clip shorter than a block is one block.
    """
    music = np.asarray(music, dtype=np.float64)
    weighted_music, weighted_noise = k_weighted(music, sample_rate_hz), k_weighted(noise, sample_rate_hz)
    length = music.shape[-1]
    block = min(max(round(BLOCK_S * sample_rate_hz), 1), length)
    hop = max(round(BLOCK_HOP_S * sample_rate_hz), 1)
    starts = np.arange(0, length - block + 1, hop)
    centres = starts + block / 2
    neutral = np.empty(noise.shape, dtype=np.float32)
    for lane in range(music.shape[0]):
        cross = _block_sums(weighted_music[lane] * weighted_noise[lane], starts, block)
        power = _block_sums(weighted_music[lane] ** 2, starts, block)
        share = np.where(power > 0, cross / np.where(power > 0, power, 1.0), 0.0)
        neutral[lane] = noise[lane] - np.interp(np.arange(length), centres, share) * music[lane]
    return neutral


def _block_sums(values: np.ndarray, starts: np.ndarray, block: int) -> np.ndarray:
    """Σ values[s : s + block] for every start s, by one cumulative sum."""
    cumulative = np.concatenate(([0.0], np.cumsum(values)))
    return cumulative[starts + block] - cumulative[starts]
