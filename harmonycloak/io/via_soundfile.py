"""Audio through libsndfile (the `soundfile` package): WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3.

libsndfile 1.2 decodes MP3 with mpg123, which reads the LAME/Xing tag and drops the encoder
delay and padding; it decodes Opus honouring the pre-skip and the final granule position, and
at the rate the OpusHead names when Opus can decode at it (8/12/16/24/48 kHz; 48 kHz
otherwise). Decoded lengths therefore equal the encoded input's length.

Writing here covers PCM WAV, FLAC and Ogg Vorbis. libsndfile converts float to integer
samples with the same 2^(bits-1) scale it reads with, and clips, so PCM_16/PCM_24 data round
trips bit for bit.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import soundfile
from mutagen.oggvorbis import OggVorbis

from harmonycloak.music import AudioFormat

# libsndfile major format → harmonycloak container; subtype → codec for those that vary.
_MAJOR_TO_CONTAINER = {"WAV": "wav", "WAVEX": "wav", "RF64": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}
_OGG_SUBTYPE_TO_CODEC = {"VORBIS": ("ogg", "vorbis"), "OPUS": ("opus", "opus")}
_CONTAINER_TO_MAJOR = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}

# Ogg Vorbis and Ogg Opus (mapping family 1) store channels in the Vorbis order (Vorbis I
# specification, section 4.3.9: L C R for 3, FL C FR RL RR LFE for 5.1, ...); libsndfile
# passes them through as stored. harmonycloak keeps channels in the WAV/SMPTE order that WAV,
# FLAC and ffmpeg use (L R C for 3, FL FR FC LFE BL BR for 5.1, ...). WAV-order channel i is
# Vorbis-order channel _VORBIS_TO_WAV_ORDER[count][i]; counts 1, 2 and 4 agree already.
_VORBIS_TO_WAV_ORDER = {
    3: (0, 2, 1),
    5: (0, 2, 1, 3, 4),
    6: (0, 2, 1, 5, 3, 4),
    7: (0, 2, 1, 6, 5, 3, 4),
    8: (0, 2, 1, 7, 5, 6, 3, 4),
}
_OGG_SUBTYPES = ("VORBIS", "OPUS")

_BLOCK_FRAMES = 4096  # small, so a file damaged part way reports about where
# Frames per byte of file beyond which a stated length is not believed when reserving memory:
# Opus at 6 kbps, the leanest usual coding, holds 64 frames a byte. A damaged header may
# state billions of frames; the samples beyond this are read all the same, only not into
# memory reserved in advance.
_MAX_FRAMES_PER_BYTE = 64
_WRITE_BLOCK_FRAMES = 1 << 16


def describe(path: Path) -> tuple[str, str, str] | None:
    """(libsndfile major format, subtype, a human name) or None if libsndfile cannot open it."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None
    return info.format, info.subtype, f"{info.format_info} / {info.subtype_info}"


def format_of(major: str, subtype: str) -> tuple[str, str, str | None] | None:
    """(container, codec, lossless subtype) for a libsndfile format, or None if unsupported."""
    container = _MAJOR_TO_CONTAINER.get(major)
    if container == "ogg":
        pair = _OGG_SUBTYPE_TO_CODEC.get(subtype)
        return (*pair, None) if pair else None
    if container == "mp3":
        return ("mp3", "mp3", None) if subtype == "MPEG_LAYER_III" else None
    if container is None:
        return None
    return container, ("pcm" if container == "wav" else "flac"), subtype


def stream_shape(path: Path) -> tuple[int, int, int]:
    """(sample rate in Hz as decoded, channels, frames libsndfile expects) without decoding."""
    info = soundfile.info(str(path))
    return int(info.samplerate), int(info.channels), int(info.frames)


def read(path: Path) -> tuple[np.ndarray, str | None]:
    """Decode the whole file: (samples float32 (channels, frames), error text or None).

    Decodes block by block so that a file damaged part way keeps what came before the
    damage; the caller decides whether a short read is a truncation.
    """
    extra_blocks = []
    error = None
    with soundfile.SoundFile(str(path)) as file:
        channels = file.channels
        in_vorbis_order = file.subtype in _OGG_SUBTYPES
        # Filled in place up to the length the header states (one copy of the song in memory);
        # blocks beyond it, if a header understates, are appended after.
        believable = _MAX_FRAMES_PER_BYTE * path.stat().st_size
        samples = np.empty((channels, min(max(int(file.frames), 0), believable)), np.float32)
        filled = 0
        try:
            # SoundFile.read trims each block to what was decoded (SoundFile.blocks does not:
            # on a short MP3 it yields the unfilled rest of its buffer).
            while (block := file.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)).shape[0]:
                if filled + block.shape[0] <= samples.shape[1] and not extra_blocks:
                    samples[:, filled : filled + block.shape[0]] = block.T
                    filled += block.shape[0]
                else:
                    extra_blocks.append(block.T.copy())
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            error = str(exc) or "the decoder stopped"
    samples = samples[:, :filled]
    if extra_blocks:
        samples = np.concatenate([samples, *extra_blocks], axis=1)
    if in_vorbis_order and channels in _VORBIS_TO_WAV_ORDER:
        samples = samples[list(_VORBIS_TO_WAV_ORDER[channels])]
    return samples, error


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # sndfile.h: whether float WAV/AIFF files get a PEAK chunk


def write(samples: np.ndarray, sample_rate_hz: int, fmt: AudioFormat, path: Path) -> None:
    """Write (channels, frames) float32 samples as WAV/FLAC (fmt.subtype) or Ogg Vorbis."""
    num_channels = samples.shape[0]
    settings = {"format": _CONTAINER_TO_MAJOR[fmt.container], "subtype": fmt.subtype}
    if fmt.codec == "vorbis":
        if num_channels in _VORBIS_TO_WAV_ORDER:
            samples = samples[np.argsort(_VORBIS_TO_WAV_ORDER[num_channels])]
        settings.update(subtype="VORBIS",
                        compression_level=vorbis_compression_level(fmt.bitrate_bps, sample_rate_hz, num_channels))
    try:
        with soundfile.SoundFile(str(path), "w", sample_rate_hz, num_channels, **settings) as file:
            # No PEAK chunk: libsndfile stamps it with the time of writing, so a float WAV written
            # twice from the same samples would differ in bytes (same seed, same bytes).
            soundfile._snd.sf_command(file._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0)
            # In blocks: libsndfile 1.2.2's Vorbis writer crashes on one call with minutes of audio.
            for start in range(0, samples.shape[1], _WRITE_BLOCK_FRAMES):
                file.write(samples[:, start:start + _WRITE_BLOCK_FRAMES].T)
    except RuntimeError as error:  # soundfile.LibsndfileError says only "System error."
        free_bytes = os.statvfs(path.parent).f_bavail * os.statvfs(path.parent).f_frsize
        if free_bytes < _WRITE_BLOCK_FRAMES * num_channels * 4:  # not room for one more block
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from error
        raise


def vorbis_compression_level(bitrate_bps: int, sample_rate_hz: int, num_channels: int) -> float:
    """libsndfile's Vorbis compression level (0 = best) whose nominal bitrate is nearest.

    Vorbis is a variable-bitrate codec steered by a quality setting; libvorbis derives the
    nominal bitrate written into the header from quality, rate and channels. libsndfile maps
    compression level c to quality 1 - c. The nominal bitrate falls monotonically with c, so
    bisection finds the level; each probe encodes 64 frames of silence in memory (~3 ms).
    """
    silence = np.zeros((64, num_channels), np.float32)

    def nominal_bps(level: float) -> int:
        buffer = io.BytesIO()
        soundfile.write(buffer, silence, sample_rate_hz, format="OGG", subtype="VORBIS",
                        compression_level=level)
        buffer.seek(0)
        return int(OggVorbis(buffer).info.bitrate)

    best, worst = 0.0, 1.0
    if bitrate_bps >= nominal_bps(best):
        return best
    if bitrate_bps <= nominal_bps(worst):
        return worst
    for _ in range(12):  # to a level step of 2^-12, far below what changes the bitrate audibly
        middle = (best + worst) / 2
        if nominal_bps(middle) >= bitrate_bps:
            best = middle
        else:
            worst = middle
    # libvorbis' whole quality steps (levels 0.0, 0.1, ... 1.0) give the round nominal rates
    # (e.g. 96000 for stereo 44.1 kHz at 0.8); prefer one of them when it is as close.
    candidates = (round(best, 1), round(worst, 1), best, worst)
    return min(candidates, key=lambda level: abs(nominal_bps(level) - bitrate_bps))

