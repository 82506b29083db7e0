"""Safeguards around protection: the numbers a user types, songs too short to protect, and the
levels of what is written.

Refused before any work, each with a one-line `SettingsError` or `AudioFileError`:

- a seed that is not a whole number from 0 to `MAX_SEED` (PyTorch's generators take 64 bits;
  models of a bag are seeded seed + i, so the top bit is left free);
- a count (rounds, training steps) under 1;
- a duration (the preview) that is not a finite number of seconds above 0 (NaN, infinity);
- a song, or the part a preview keeps, shorter than one noise window: there is no window
  to place noise in, so nothing could be protected.

And what protection never does to the sound: it adds the noise and keeps each sample of the
sum within ±32767/32768, the largest level a 16-bit file holds on both sides, so the noise takes
no sample to full scale that the song did not reach (the noise is cut at those few samples
instead), or within that sample's own level when the song had it at full scale or beyond (a
float file with samples beyond ±1 keeps them as they came, not clipped).
"""

from __future__ import annotations

import math

import numpy as np

from harmonycloak.errors import AudioFileError, SettingsError
from harmonycloak.music import Audio

MAX_SEED = 2**63 - 1
FULL_SCALE_KEPT = 32767 / 32768  # the largest level a 16-bit file holds on both sides (−1.0 reads as clipped)
LIMIT_PIECE_SAMPLES = 1 << 20  # `limit_to_source_range` looks for samples over full scale this many at a time


def check_seed(seed: int) -> None:
    """Raise `SettingsError` unless ``seed`` is a whole number from 0 to `MAX_SEED`."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise SettingsError(f"the seed must be a whole number from 0 to 2^63 - 1, not {seed}")


def check_count(what: str, value: int) -> None:
    """Raise `SettingsError` unless ``value`` is a whole number of at least 1 (``what``: its name)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SettingsError(f"{what} must be a whole number of at least 1, not {value}")


def check_seconds(what: str, value: float) -> None:
    """Raise `SettingsError` unless ``value`` is a finite number of seconds above 0."""
    if not (isinstance(value, (int, float, np.number)) and math.isfinite(value) and value > 0):
        raise SettingsError(f"{what} must be a positive number of seconds, not {value}")


def check_long_enough(audio: Audio, window_ms: float) -> None:
    """Raise `AudioFileError` (naming the file) if ``audio`` is shorter than one noise window."""
    duration_ms = 1000.0 * audio.num_frames / audio.sample_rate_hz
    if duration_ms < window_ms:
        raise AudioFileError(
            f"the audio lasts {duration_ms:.3g} ms, shorter than one noise window ({window_ms:g} ms): "
            "there is nothing to protect", audio.source_path)


def limit_to_source_range(protected: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Hold ``protected`` in place to ±max(32767/32768, |source|) sample by sample and return it.

    No sample the song kept under full scale reaches it (an integer file holds no more, and
    −1.0 reads as clipped); a sample the song had at full scale or beyond (a float file over
    ±1) may keep its own level, never more, so its loud passages are not flattened.
    Shapes: both (channels, frames), worked through in pieces (a long song is large).
    """
    flat_protected, flat_source = protected.reshape(-1), source.reshape(-1)
    for first in range(0, flat_protected.size, LIMIT_PIECE_SAMPLES):
        piece = flat_protected[first : first + LIMIT_PIECE_SAMPLES]
        over = np.flatnonzero(np.abs(piece) > FULL_SCALE_KEPT)
        if over.size:
            allowed = np.maximum(FULL_SCALE_KEPT, np.abs(flat_source[first + over]))
            piece[over] = np.clip(piece[over], -allowed, allowed)
    return protected
