"""Noise that leaves the music's loudness where it was.

Integrated loudness is the gated mean, over 400 ms blocks, of the K-weighted power. Adding
noise δ to music x changes a block's power by

    ‖K(x + δ)‖² − ‖Kx‖² = 2⟨Kx, Kδ⟩ + ‖Kδ‖²

and the cross term, not the noise's own power, is what moves it: noise 20 dB under the music
adds 0.04 dB by its power, but noise partly in phase with the music (an optimiser finds that
raising the music's own level is one way to change what a model learns) adds several times
that. Taking from δ, block by block, its K-weighted projection on the music,

    δ' = δ − c(t)·x,    c = ⟨Kx, Kδ⟩ / ‖Kx‖²  per block, interpolated between block centres,

removes the cross term and leaves only the noise's own power: ‖Kδ'‖² = ‖Kδ‖² − c²‖Kx‖² in each
block, so the noise gets quieter, never louder. That power still adds 10·log10(1 + ‖Kδ'‖²/‖Kx‖²):
0.05 dB for noise 19 dB under the music. Taking a little more of the music keeps the block's
K-weighted power where it was: with P = ‖Kx‖², C = ⟨Kx, Kδ⟩ and D = ‖Kδ‖², c solves
‖K(x + δ − c·x)‖² = P,

    (1 − c)²·P + 2(1 − c)·C + D = P   →   1 − c = (√(C² + P·(P − D)) − C) / P

which for noise well under the music is the projection plus half the noise-to-music power
ratio, c ≈ C/P + (D − C²/P) / 2P (noise as loud as the music or louder, where no c keeps the
power, takes the projection alone). What is taken away is a copy of the music a few percent of
its level. Music that K-weighting all but removes (a DC offset, rumble under
38 Hz) would make c large while c·x, unweighted, is not small: c is therefore held to the
block's noise-to-music amplitude ratio ‖δ‖ / ‖x‖, so what is taken away is never louder than
the noise itself.

K-weighting is ITU-R BS.1770's two stages (a +4 dB shelf above 1.5 kHz, a high-pass at 38 Hz),
through pyloudnorm's biquads: the filters of the loudness measure (`metrics.perceptual.loudness_change_lu`,
pyloudnorm's meter).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
from pyloudnorm import IIRfilter

BLOCK_S = 0.4  # the loudness measure's block (BS.1770)
BLOCK_HOP_S = 0.1  # its blocks overlap by three quarters
PIECE_S = 60.0  # a song is filtered and corrected this many seconds at a time (memory)


def k_weighting(sample_rate_hz: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """BS.1770's K-weighting at a rate: (b, a, passband gain) of each of its two biquads."""
    stages = (IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate_hz, "high_shelf"),
              IIRfilter(0.0, 0.5, 38.0, sample_rate_hz, "high_pass"))
    return [(stage.b, stage.a, stage.passband_gain) for stage in stages]


def k_weighted(samples: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """BS.1770's K-weighting of (..., N) samples from rest, float64."""
    samples = np.asarray(samples, dtype=np.float64)
    stages = k_weighting(sample_rate_hz)
    return _filtered(samples, stages, [np.zeros((*samples.shape[:-1], len(a) - 1)) for _, a, _ in stages])


def _filtered(samples: np.ndarray, stages: list, states: list[np.ndarray]) -> np.ndarray:
    """`samples` (..., N) through the K-weighting `stages` from their `states`, which are advanced in place."""
    out = np.asarray(samples, dtype=np.float64)
    for index, (b, a, gain) in enumerate(stages):
        out, states[index] = scipy.signal.lfilter(b, a, out, zi=states[index])
        out = gain * out
    return out


def loudness_neutral(noise: np.ndarray, music: np.ndarray, sample_rate_hz: int,
                     out: np.ndarray | None = None) -> np.ndarray:
    """`noise` less the copy of `music` that keeps each block's K-weighted power, block by block
    (the projection, and a little more for the noise's own power): (L, N) each, float32 out,
    written into `out` ((L, N) float32, which may be `noise` itself: a long song's noise is large)
    or a new array.

    Per lane, c is the coefficient of each 400 ms block (starts every 100 ms), placed
    at the block's centre and interpolated linearly between centres (held flat before the first
    and after the last); a clip shorter than a block is one block. The song is read a minute at a
    time, the filters' state carried across, so a long song costs a minute's memory.
    """
    length = music.shape[-1]
    hop = max(round(BLOCK_HOP_S * sample_rate_hz), 1)
    hops_per_block = max(round(BLOCK_S / BLOCK_HOP_S), 1)
    piece = max(round(PIECE_S * sample_rate_hz / hop), 1) * hop
    neutral = np.empty(noise.shape, dtype=np.float32) if out is None else out
    for lane in range(music.shape[0]):
        sums = _hop_sums(noise[lane], music[lane], sample_rate_hz, hop, piece)
        if len(sums["cross"]) >= hops_per_block:
            sums = {name: np.convolve(values, np.ones(hops_per_block), "valid") for name, values in sums.items()}
            centres = np.arange(len(sums["cross"])) * hop + hops_per_block * hop / 2
        else:  # shorter than a block: one block, the whole clip
            sums, centres = {name: values.sum(keepdims=True) for name, values in sums.items()}, np.array([length / 2])
        share = _power_keeping_share(sums["cross"], sums["power"], sums["noise_power"])
        limit = np.sqrt(_ratio(sums["noise"], sums["music"]))  # what is taken away stays under the noise
        share = np.clip(share, -limit, limit)
        for first in range(0, length, piece):
            span = slice(first, min(first + piece, length))
            neutral[lane, span] = noise[lane, span] - np.interp(np.arange(span.start, span.stop), centres, share) \
                * music[lane, span]
    return neutral


def _power_keeping_share(cross: np.ndarray, power: np.ndarray, noise_power: np.ndarray) -> np.ndarray:
    """c of each block with ‖K(x + δ − c·x)‖² = ‖Kx‖²: 1 − (√(C² + P·(P − D)) − C) / P; the projection
    C / P where no c keeps the power (D > P + C²/P), and 0 where the block is silent (P = 0)."""
    discriminant = cross**2 + power * (power - noise_power)
    kept = 1.0 - _ratio(np.sqrt(np.maximum(discriminant, 0.0)) - cross, power)
    return np.where((discriminant >= 0) & (power > 0), kept, _ratio(cross, power))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0."""
    return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)


def _hop_sums(noise: np.ndarray, music: np.ndarray, sample_rate_hz: int, hop: int, piece: int) -> dict[str, np.ndarray]:
    """Over every whole hop of one lane (N,), each (N // hop,): "cross" Σ Kx·Kδ, "power" Σ (Kx)²,
    "noise_power" Σ (Kδ)², and unweighted "noise" Σ δ² and "music" Σ x²."""
    stages = k_weighting(sample_rate_hz)
    states = {name: [np.zeros(len(a) - 1) for _, a, _ in stages] for name in ("music", "noise")}  # at rest
    whole = music.shape[-1] // hop * hop
    sums: dict[str, list[np.ndarray]] = {"cross": [], "power": [], "noise_power": [], "noise": [], "music": []}
    for first in range(0, whole, piece):
        weighted = {}
        for name, signal in (("music", music), ("noise", noise)):
            samples = np.asarray(signal[first : min(first + piece, whole)], dtype=np.float64)
            sums[name].append((samples.reshape(-1, hop) ** 2).sum(axis=1))
            weighted[name] = _filtered(samples, stages, states[name]).reshape(-1, hop)
        sums["cross"].append((weighted["music"] * weighted["noise"]).sum(axis=1))
        sums["power"].append((weighted["music"] ** 2).sum(axis=1))
        sums["noise_power"].append((weighted["noise"] ** 2).sum(axis=1))
    return {name: np.concatenate(values) if values else np.zeros(0) for name, values in sums.items()}
