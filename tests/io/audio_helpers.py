"""Test signals and measurements for the audio I/O tests, computed without harmonycloak."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from scipy.signal import chirp, correlate


def music_like(num_channels: int, sample_rate_hz: int, duration_s: float = 0.6, seed: int = 0) -> np.ndarray:
    """A short music-like signal (channels, frames): a few harmonic notes with decaying
    envelopes, a little noise, and clicks every 100 ms (transients, to make any time
    shift obvious). Peak below 0.9."""
    rng = np.random.default_rng(seed)
    frames = int(duration_s * sample_rate_hz)
    t = np.arange(frames) / sample_rate_hz
    out = np.zeros((num_channels, frames))
    for channel in range(num_channels):
        for k, f0_hz in enumerate((220.0, 277.2, 329.6)):
            onset_s = 0.15 * k
            envelope = np.where(t >= onset_s, np.exp(-(t - onset_s) * 3.0), 0.0)
            for harmonic in range(1, 6):
                if f0_hz * harmonic < sample_rate_hz / 2:
                    out[channel] += 0.12 / harmonic * envelope * np.sin(
                        2 * np.pi * f0_hz * harmonic * (1 + 0.002 * channel) * t + rng.uniform(0, 2 * np.pi))
        out[channel] += 0.01 * rng.standard_normal(frames)
        out[channel, int(0.05 * sample_rate_hz)::int(0.1 * sample_rate_hz)] += 0.3
    return (0.9 * out / np.abs(out).max()).astype(np.float32)


def chirp_signal(num_channels: int, sample_rate_hz: int, duration_s: float = 0.5) -> np.ndarray:
    """A linear 100 Hz → 5 kHz sweep at 0.5 peak, same in every channel: its autocorrelation
    has one sharp peak, so cross-correlation finds a time shift to the sample."""
    t = np.arange(int(duration_s * sample_rate_hz)) / sample_rate_hz
    sweep = 0.5 * chirp(t, f0=100.0, t1=duration_s, f1=5000.0)
    fade = np.minimum(1.0, np.minimum(t, duration_s - t) / 0.01)  # 10 ms fades: no edge clicks
    return np.tile(sweep * fade, (num_channels, 1)).astype(np.float32)


def lag_frames(reference: np.ndarray, decoded: np.ndarray) -> int:
    """How many frames ``decoded`` (1-D) lags ``reference`` (1-D), from the cross-correlation peak."""
    correlation = correlate(decoded.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    return int(np.argmax(correlation)) - (len(reference) - 1)


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Signal-to-noise ratio of ``decoded`` against ``reference`` (same shape), in dB."""
    error = decoded.astype(np.float64) - reference.astype(np.float64)
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum(error ** 2)))


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    """A valid PNG image of one colour, built from the PNG specification (for cover art)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def parse_lame_tag(path: str | Path) -> dict[str, int]:
    """The Xing/Info frame of an MP3 written after an ID3v2 tag, parsed by hand from the
    Xing and LAME tag layouts: frame count, encoder delay and padding (in samples), and the
    samples per frame and side-info size implied by the first frame header."""
    data = Path(path).read_bytes()
    start = 0
    if data[:3] == b"ID3":  # ID3v2 size: 4 bytes of 7 bits each, after a 10-byte header
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        start = 10 + size
    header = int.from_bytes(data[start:start + 4], "big")
    assert header >> 21 == 0x7FF, "no MPEG frame sync after the ID3 tag"
    mpeg1 = (header >> 19) & 0b11 == 0b11
    mono = (header >> 6) & 0b11 == 0b11
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    xing = start + 4 + side_info
    tag = data[xing:xing + 4]
    assert tag in (b"Xing", b"Info"), f"no Xing/Info tag, found {tag!r}"
    flags = int.from_bytes(data[xing + 4:xing + 8], "big")
    offset = xing + 8
    frames = None
    if flags & 1:
        frames = int.from_bytes(data[offset:offset + 4], "big")
        offset += 4
    offset += 4 if flags & 2 else 0      # byte count
    offset += 100 if flags & 4 else 0    # seek table
    offset += 4 if flags & 8 else 0      # quality
    # LAME extension: 9-byte encoder string, then 12 more bytes, then delay/padding (12 bits each).
    delay_padding = int.from_bytes(data[offset + 21:offset + 24], "big")
    return {
        "frames": frames,
        "delay": delay_padding >> 12,
        "padding": delay_padding & 0xFFF,
        "samples_per_frame": 1152 if mpeg1 else 576,
    }
