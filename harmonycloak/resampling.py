"""Sample-rate conversion: one polyphase resampler for every part of the package."""

from __future__ import annotations

import math

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


def to_working_rate(samples: np.ndarray, sample_rate_hz: int, working_rate_hz: int) -> np.ndarray:
    """`resample` to the rate the models hear, as float32 (..., frames)."""
    return resample(samples, sample_rate_hz, working_rate_hz).astype(np.float32)
