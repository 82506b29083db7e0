"""Containers for music as the rest of the package passes it around.

Units are in the field names. Audio samples are float32 in [-1, 1], laid out
``(channels, frames)`` so that one channel is one contiguous row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AudioFormat:
    """How an audio file was stored, so that the protected file can be stored the same way.

    Attributes:
        container: file kind as the user knows it: "wav", "flac", "ogg", "opus", "mp3", "m4a".
        codec: codec inside the container: "pcm", "flac", "vorbis", "opus", "mp3", "aac".
        subtype: soundfile subtype for lossless files ("PCM_16", "PCM_24", "PCM_32",
            "FLOAT", "DOUBLE"); None for lossy codecs.
        bitrate_bps: nominal bitrate of lossy codecs in bits per second; None for lossless.
    """

    container: str
    codec: str
    subtype: str | None = None
    bitrate_bps: int | None = None

    @property
    def is_lossy(self) -> bool:
        return self.codec in {"vorbis", "opus", "mp3", "aac"}


@dataclass
class Audio:
    """A piece of audio in memory.

    Attributes:
        samples: float32 array, shape (channels, frames), values in [-1, 1].
        sample_rate_hz: frames per second.
        format: how the file it came from was stored; None for audio made in memory.
        source_path: the file it came from; None for audio made in memory.
    """

    samples: np.ndarray
    sample_rate_hz: int
    format: AudioFormat | None = None
    source_path: Path | None = field(default=None)

    @property
    def num_channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate_hz
