"""Which audio formats harmonycloak reads and writes, and which format a file name asks for.

A format is an `AudioFormat(container, codec, subtype, bitrate_bps)`. The containers are the
file kinds a musician knows: "wav", "flac", "ogg" (Ogg Vorbis), "opus" (Ogg Opus), "mp3",
"m4a" (MPEG-4 audio: AAC or Apple Lossless) and "aac" (raw ADTS AAC, see below).

Raw ADTS (.aac): a bare stream of AAC frames with no container. It is read and written, but it
cannot say how many priming samples the encoder put in front or how long the piece is, so a
decoder plays the encoder's priming (1024 samples for ffmpeg's encoder, 2112 for Apple's) as
silence before the music and pads the end to a whole frame. harmonycloak therefore cannot
line an .aac file up sample for sample; it keeps the rate, channels and bitrate. Use .m4a
(the same AAC in an MPEG-4 container, with an edit list) where exact length matters.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import soundfile

from harmonycloak.errors import AudioFileError
from harmonycloak.music import AudioFormat

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac",
)

# The format a file name stands for when nothing else says how to store the audio. Lossy
# defaults are the usual "transparent" release bitrates of each codec.
_DEFAULT_FORMAT_FOR_EXTENSION: dict[str, AudioFormat] = {
    ".wav": AudioFormat("wav", "pcm", subtype="PCM_16"),
    ".flac": AudioFormat("flac", "flac", subtype="PCM_16"),
    ".ogg": AudioFormat("ogg", "vorbis", bitrate_bps=192_000),
    ".oga": AudioFormat("ogg", "vorbis", bitrate_bps=192_000),
    ".opus": AudioFormat("opus", "opus", bitrate_bps=160_000),
    ".mp3": AudioFormat("mp3", "mp3", bitrate_bps=320_000),
    ".m4a": AudioFormat("m4a", "aac", bitrate_bps=256_000),
    ".mp4": AudioFormat("m4a", "aac", bitrate_bps=256_000),
    ".aac": AudioFormat("aac", "aac", bitrate_bps=256_000),
}

# Extensions a file of each container may carry (Ogg Vorbis and Ogg Opus share the Ogg ones).
_EXTENSIONS_FOR_CONTAINER: dict[str, frozenset[str]] = {
    "wav": frozenset({".wav"}),
    "flac": frozenset({".flac"}),
    "ogg": frozenset({".ogg", ".oga", ".opus"}),
    "opus": frozenset({".ogg", ".oga", ".opus"}),
    "mp3": frozenset({".mp3"}),
    "m4a": frozenset({".m4a", ".mp4"}),
    "aac": frozenset({".aac"}),
}

# (container, codec) pairs harmonycloak can write; reading accepts the same set.
WRITABLE_FORMATS: frozenset[tuple[str, str]] = frozenset({
    ("wav", "pcm"), ("flac", "flac"), ("ogg", "vorbis"), ("ogg", "opus"), ("opus", "opus"),
    ("mp3", "mp3"), ("m4a", "aac"), ("m4a", "alac"), ("aac", "aac"),
})

# Bit depths each lossless codec can store (soundfile subtype names). WAV takes whatever
# libsndfile can write into a WAV file (checked with soundfile.check_format).
LOSSLESS_SUBTYPES: dict[str, tuple[str, ...]] = {
    "flac": ("PCM_S8", "PCM_16", "PCM_24"),  # libsndfile 1.2 writes no 32-bit or float FLAC
    "alac": ("PCM_16", "PCM_24"),
}

# Sample rates each lossy encoder accepts (None: any rate harmonycloak accepts at all).
# MP3: MPEG-1/2/2.5 layer III; AAC: ffmpeg's native encoder; Opus: the codec's own rates.
ENCODER_SAMPLE_RATES_HZ: dict[str, tuple[int, ...] | None] = {
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    "aac": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000),
    "opus": (8000, 12000, 16000, 24000, 48000),
    "vorbis": None,
    "pcm": None,
    "flac": None,
    "alac": None,
}

# Limits on what harmonycloak accepts at all (read and write).
MIN_SAMPLE_RATE_HZ = 8_000
MAX_SAMPLE_RATE_HZ = 192_000
MAX_CHANNELS = 8


def supported_formats_text() -> str:
    """The supported file kinds, for error messages: "WAV, FLAC, Ogg Vorbis, ..."."""
    return "WAV, FLAC, Ogg Vorbis (.ogg/.oga), Ogg Opus (.opus), MP3, AAC/ALAC in M4A (.m4a/.mp4), raw AAC (.aac)"


def audio_format_for_path(path: str | Path) -> AudioFormat:
    """The default format for a file name, from its extension (case-insensitive).

    Raises:
        AudioFileError: the extension is not one of `SUPPORTED_EXTENSIONS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _DEFAULT_FORMAT_FOR_EXTENSION:
        raise AudioFileError(
            f"'{suffix or '(no extension)'}' is not a supported audio file type; "
            f"supported: {supported_formats_text()}",
            path,
        )
    return _DEFAULT_FORMAT_FOR_EXTENSION[suffix]


def extension_fits(container: str, path: str | Path) -> bool:
    """Whether a file of this container may carry the extension of ``path``."""
    return Path(path).suffix.lower() in _EXTENSIONS_FOR_CONTAINER.get(container, frozenset())


def output_format(source: AudioFormat | None, path: str | Path,
                  requested: AudioFormat | None = None) -> AudioFormat:
    """The format to write ``path`` in, complete (subtype for lossless, bitrate for lossy).

    Precedence: the ``requested`` format; else the ``source`` format when the file name fits
    its container; else the default for the file name, keeping the source's bit depth
    (lossless to lossless) or bitrate (lossy to lossy) where the target can store it.

    Raises:
        AudioFileError: the format cannot be written, or the file name contradicts it.
    """
    if requested is not None:
        if Path(path).suffix.lower() in _DEFAULT_FORMAT_FOR_EXTENSION and not extension_fits(
                requested.container, path):
            raise AudioFileError(
                f"the file name ends in '{Path(path).suffix}' but the format asked for is "
                f"{requested.container.upper()}; give the file a matching extension",
                path,
            )
        chosen = requested
    elif source is not None and extension_fits(source.container, path):
        chosen = source
    else:
        chosen = _carry_over(source, audio_format_for_path(path))
    if (chosen.container, chosen.codec) not in WRITABLE_FORMATS:
        raise AudioFileError(
            f"cannot write {chosen.codec} audio in a {chosen.container} file; "
            f"supported: {supported_formats_text()}",
            path,
        )
    return _complete(chosen)


def _carry_over(source: AudioFormat | None, target: AudioFormat) -> AudioFormat:
    """Keep the source's bit depth or bitrate in a target of the same kind (lossless/lossy)."""
    if source is None:
        return target
    if target.is_lossy and source.is_lossy and source.bitrate_bps:
        return replace(target, bitrate_bps=source.bitrate_bps)
    if not target.is_lossy and not source.is_lossy and source.subtype:
        return replace(target, subtype=source.subtype)
    return target


def _complete(fmt: AudioFormat) -> AudioFormat:
    """Fill in a missing bitrate or subtype and map bit depths the codec cannot store."""
    if fmt.is_lossy:
        if fmt.bitrate_bps is None:
            default = next(f for f in _DEFAULT_FORMAT_FOR_EXTENSION.values() if f.codec == fmt.codec)
            fmt = replace(fmt, bitrate_bps=default.bitrate_bps)
        return replace(fmt, subtype=None)
    subtype = fmt.subtype or "PCM_16"
    allowed = LOSSLESS_SUBTYPES.get(fmt.codec)
    if allowed is None and not soundfile.check_format("WAV", subtype):
        subtype = "PCM_16"  # a WAV subtype libsndfile reads but cannot write (rare)
    elif allowed is not None and subtype not in allowed:
        # 32-bit and float sources go to the deepest depth the codec stores, 24 bits; 8-bit,
        # mu-law, ADPCM and the like to 16 bits, which holds them without loss.
        subtype = "PCM_24" if subtype in ("PCM_32", "FLOAT", "DOUBLE") else "PCM_16"
    return replace(fmt, subtype=subtype, bitrate_bps=None)
