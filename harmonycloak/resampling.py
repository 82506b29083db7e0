"""Sample-rate conversion: one polyphase resampler for every part of the package."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.signal import resample_poly


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited, delay-free resampling of (..., frames) from `from_hz` to `to_hz`.

    Polyphase filtering (scipy.signal.resample_poly, Kaiser window) by the reduced ratio
    to_hz / from_hz; the output has ⌈frames · to_hz / from_hz⌉ frames, aligned with the input
    (no filter delay). Returns `samples` itself when the rates are equal; otherwise float64
    for float64 input and float32 or float64 as scipy gives for other dtypes.
    """
    from_hz, to_hz = int(round(from_hz)), int(round(to_hz))
    if from_hz == to_hz:
        return samples
    step = math.gcd(from_hz, to_hz)
    return resample_poly(samples, to_hz // step, from_hz // step, axis=-1)


def resample_in_pieces(read: Callable[[int, int], np.ndarray], num_frames: int, from_hz: int, to_hz: int,
                       num_out: int, piece_frames: int, alignment: int = 1) -> np.ndarray:
    """`resample` of a signal too long to hold twice, read a piece at a time: (..., num_out) float32.

    `read(start, stop)` gives the input's frames [start, stop) as (..., stop − start), for
    0 ≤ start < stop ≤ `num_frames`, with `start` a multiple of `alignment`. Each piece is read
    with the filter's reach on both sides and starts on a whole output sample, so every output
    sample is computed from the same input samples as when the whole signal is resampled at
    once: the same values. Output frames past ⌈num_frames · to_hz / from_hz⌉ are zero.
    """
    from_hz, to_hz = int(round(from_hz)), int(round(to_hz))
    step = math.gcd(from_hz, to_hz)
    up, down = to_hz // step, from_hz // step
    grid = math.lcm(down, alignment)  # a piece starting here starts on an output sample, and `read` may start here
    reach = -(-10 * max(up, down) // up) + 1  # the polyphase filter's half length, in input frames
    margin = -(-reach // grid) * grid
    piece = max(piece_frames // grid, 1) * grid
    out = None
    for start in range(0, num_frames, piece):
        stop = min(start + piece, num_frames)
        first, last = max(start - margin, 0), min(stop + margin, num_frames)
        resampled = resample(read(first, last), from_hz, to_hz)
        if out is None:
            out = np.zeros((*resampled.shape[:-1], num_out), np.float32)
        begin, end = start * up // down, min(-(-stop * up // down), num_out)
        if begin >= end:
            break
        offset = first * up // down
        out[..., begin:end] = resampled[..., begin - offset : end - offset]
    return out


def to_working_rate(samples: np.ndarray, sample_rate_hz: int, working_rate_hz: int) -> np.ndarray:
    """`resample` to the rate the models hear, as float32 (..., frames)."""
    return resample(samples, sample_rate_hz, working_rate_hz).astype(np.float32)
