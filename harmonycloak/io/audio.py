"""Read and write audio files: WAV, FLAC, Ogg Vorbis, Ogg Opus, MP3, AAC/ALAC in M4A, raw AAC.

`read_audio` and `write_audio` are a mirrored pair: a file read and written again keeps its
format, sample rate, channel count and length, its bit depth (lossless) or bitrate (lossy),
and, given ``tags_from``, its tags and cover art. Lossy files are decoded without the
encoder's delay and padding, and encoded so that they decode without them, so the written
file lines up with the input sample for sample.

Which library handles what (the one place that chooses):
  reading  libsndfile (soundfile) whenever it opens the file: WAV, FLAC, Ogg Vorbis, Ogg
           Opus, MP3 with a Xing frame; ffmpeg (PyAV) for the rest: M4A (AAC, ALAC), raw
           ADTS AAC, MP3 without a Xing frame (libsndfile stops those at a length guessed
           from the file size), and WAV/FLAC/Ogg/MP3 files that libsndfile rejects but
           ffmpeg can decode.
  writing  `_WRITERS` below: libsndfile for WAV, FLAC, Ogg Vorbis; ffmpeg for MP3 (LAME),
           AAC and ALAC (M4A, ADTS) and Opus. See via_soundfile.py and via_pyav.py for why.

Every problem with a file raises `AudioFileError` naming the file: missing, a folder, empty,
not audio, an unsupported format, truncated, no samples, NaN/Inf samples, more than 8
channels, or a sample rate outside 8-192 kHz.

What decodes is trusted: a file is refused as truncated only where the decoder reports an
error or the file states an exact length that its data does not reach: WAV (the data chunk's
size), FLAC (STREAMINFO's sample count), MP3 with a Xing/Info or VBRI frame count, every MP3
frame (its header states its size, so a file cut inside a frame is found), M4A (every box
states its size; the edit list or iTunSMPB the length), and Ogg (a stream must end with its
end-of-stream page; the length itself is only written on that page). A raw ADTS .aac file
or an MP3 without a Xing frame, cut exactly between two frames, states no length: it reads
as a shorter piece. Lengths guessed from the
file size (libsndfile's and mutagen's for MP3s without a Xing frame) are never taken as a
promise, nor used to cut what was decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import mutagen
import numpy as np
from mutagen.ogg import OggPage

from harmonycloak.errors import AudioFileError, HarmonyCloakError
from harmonycloak.io import mp3, mp4, riff, via_pyav, via_soundfile
from harmonycloak.io.atomic import atomic_output, refuse_to_replace
from harmonycloak.io.ogg import renumber_ogg_streams
from harmonycloak.io.formats import (
    ENCODER_SAMPLE_RATES_HZ,
    MAX_CHANNELS,
    MAX_SAMPLE_RATE_HZ,
    MIN_SAMPLE_RATE_HZ,
    SUPPORTED_EXTENSIONS,
    WRITABLE_FORMATS,
    audio_format_for_path,
    output_format,
    supported_formats_text,
)
from harmonycloak.io.tags import copy_tags
from harmonycloak.music import Audio, AudioFormat
from harmonycloak.resampling import resample

__all__ = [
    "SUPPORTED_EXTENSIONS", "audio_format_for_path", "check_output_path", "read_audio", "write_audio",
]

_Writer = Callable[[np.ndarray, int, AudioFormat, Path], None]

# codec → the function that encodes it.
_WRITERS: dict[str, _Writer] = {
    "pcm": via_soundfile.write,
    "flac": via_soundfile.write,
    "vorbis": via_soundfile.write,
    "mp3": via_pyav.write,
    "aac": via_pyav.write,
    "alac": via_pyav.write,
    "opus": via_pyav.write,
}

# Channel counts each encoder takes, where not all of 1..MAX_CHANNELS. MP3 is mono or stereo.
# ffmpeg's Opus encoder (as in PyAV 18) files 5- and 7-channel audio in the wrong order (a
# round trip through ffmpeg alone swaps channels), so those are refused rather than garbled.
_ENCODER_CHANNEL_COUNTS = {"mp3": (1, 2), "opus": (1, 2, 3, 4, 6, 8)}

# How many frames a decoded file may fall short of its stated length and still be whole:
# lossless headers are exact; lossy frame counts may be off by a codec frame or two.
_LENGTH_TOLERANCE_FRAMES = {"pcm": 0, "flac": 0, "mp3": 2 * 1152, "aac": 2 * 1024, "alac": 2 * 4096}

# Usual nominal bitrates (bps). A bitrate measured as an average (VBR MP3, AAC, Opus) within
# 10 % of one of these is taken to be it.
_NOMINAL_BITRATES_BPS = tuple(k * 1000 for k in (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256, 320))


@dataclass(frozen=True)
class _Probe:
    """What a file is, learnt before decoding it.

    Attributes:
        format: how it is stored.
        backend: via_soundfile or via_pyav, the module that decodes it.
        sample_rate_hz, num_channels: as decoded.
        stated_frames: the length the file states, or None where it states none.
    """

    format: AudioFormat
    backend: ModuleType
    sample_rate_hz: int
    num_channels: int
    stated_frames: int | None


# --- reading ---------------------------------------------------------------------------------

def read_audio(path: str | Path) -> Audio:
    """Read an audio file into float32 samples, shape (channels, frames), in [-1, 1].

    Integer samples are scaled by 2^-(bits-1) (exact); float files may hold values beyond
    ±1 and are returned unchanged. Channels come in WAV order (L R C LFE ...; Ogg's Vorbis
    order is converted). Lossy files come without encoder delay and padding where the file
    states them. Opus is decoded at the rate its header names when Opus can decode at it
    (8/12/16/24/48 kHz), else at 48 kHz. The result's ``format`` records the container,
    codec, bit depth (lossless) or nominal bitrate (lossy) for `write_audio`.

    Raises:
        AudioFileError: the file is missing, unreadable, unsupported, damaged or invalid;
            the message names the file and the problem.
    """
    path = Path(path)
    _check_is_readable_file(path)
    probe = _probe(path)
    _check_layout(path, probe.sample_rate_hz, probe.num_channels)
    samples, decode_error = probe.backend.read(path)
    samples = _checked_length(path, samples, decode_error, probe)
    _check_finite(path, samples)
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), probe.sample_rate_hz, probe.format, path)


def _check_is_readable_file(path: Path) -> None:
    if not path.exists():
        raise AudioFileError("the file does not exist", path)
    if path.is_dir():
        raise AudioFileError("this is a folder, not an audio file", path)
    if not path.is_file():
        raise AudioFileError("this is not a regular file", path)
    try:
        with open(path, "rb") as file:
            first_byte = file.read(1)
    except OSError as error:
        raise AudioFileError(f"cannot open the file ({error.strerror or error})", path) from error
    if not first_byte:
        raise AudioFileError("the file is empty (0 bytes)", path)


def _probe(path: Path) -> _Probe:
    """Identify the file: libsndfile first, ffmpeg for what libsndfile cannot open."""
    described = via_soundfile.describe(path)
    if described is not None:
        major, subtype, name = described
        kind = via_soundfile.format_of(major, subtype)
        if kind is None:
            raise _unsupported(path, name)
        container, codec, lossless_subtype = kind
        rate, channels, frames = via_soundfile.stream_shape(path)
        frame_chain = _whole_mp3(path) if codec == "mp3" else None
        fmt = AudioFormat(container, codec, lossless_subtype, _lossy_bitrate_bps(path, codec, frame_chain))
        stated = _stated_frames(path, codec, frames, frame_chain)
        # libsndfile stops an MP3 without a Xing frame at the length it guessed from the
        # file size, which cuts a variable-bitrate one short; ffmpeg decodes to the end.
        backend = via_pyav if codec == "mp3" and stated is None else via_soundfile
        return _Probe(fmt, backend, rate, channels, stated)
    if mp4.looks_like_mp4(path) and (cut := mp4.cut_box(path)) is not None:
        raise AudioFileError(f"the file is truncated (it ends inside {cut.where}: {cut.present_bytes} "
                             f"of its {cut.stated_bytes} bytes are there)", path)
    try:
        facts = via_pyav.describe(path)
    except LookupError:
        raise AudioFileError("the file holds no audio, only other kinds of data (video, subtitles)", path) from None
    if facts is None:
        if _looks_like_ogg(path) and not _ogg_stream_is_complete(path):
            raise AudioFileError("the file is truncated (its Ogg stream stops before its last page)", path)
        raise AudioFileError("this is not an audio file, or it is damaged beyond reading", path)
    container = "opus" if (facts.container, facts.codec) == ("ogg", "opus") else facts.container
    if (container, facts.codec) not in WRITABLE_FORMATS:
        raise _unsupported(path, facts.ffmpeg_names)
    frame_chain = _whole_mp3(path) if facts.codec == "mp3" else None
    fmt = AudioFormat(container, facts.codec, facts.subtype, _lossy_bitrate_bps(path, facts.codec, frame_chain))
    return _Probe(fmt, via_pyav, facts.sample_rate_hz, facts.num_channels, facts.stated_frames)


def _unsupported(path: Path, contents: str) -> AudioFileError:
    return AudioFileError(
        f"the file holds {contents} audio, which harmonycloak does not support; "
        f"supported: {supported_formats_text()}",
        path,
    )


def _whole_mp3(path: Path) -> mp3.Mp3Facts | None:
    """What an MP3's frame chain says (see harmonycloak.io.mp3), after refusing a file cut inside a frame."""
    facts = mp3.describe(path)
    if facts is not None and (cut := facts.cut_frame) is not None:
        raise AudioFileError(
            f"the file is truncated (it ends inside an MP3 frame: {cut.present_bytes} of its "
            f"{cut.stated_bytes} bytes are there)", path)
    return facts


def _stated_frames(path: Path, codec: str, libsndfile_frames: int, frame_chain: mp3.Mp3Facts | None) -> int | None:
    """The length a file opened by libsndfile states in its header, or None."""
    if codec == "pcm":
        # libsndfile reports only what is present; the data chunk states the promise.
        counts = riff.promised_and_present_frames(path)
        return counts[0] if counts is not None else None
    if codec == "flac":
        return libsndfile_frames or None  # STREAMINFO's total; 0 means "unknown"
    if codec == "mp3":
        # mpg123 (inside libsndfile) takes the length from a Xing/Info frame count less the
        # LAME tag's delay and padding. Without such a frame it guesses it from the file
        # size and the first frame's bit rate, which proves nothing.
        return libsndfile_frames if frame_chain is not None and frame_chain.states_frame_count else None
    return None


def _lossy_bitrate_bps(path: Path, codec: str, frame_chain: mp3.Mp3Facts | None = None) -> int | None:
    """The nominal bitrate of a lossy file (bps), None for lossless codecs.

    Vorbis headers state it. For AAC, Opus and MP3 with a Xing frame mutagen measures an
    average; for MP3 without one, the frame chain's average (mutagen takes the first frame's,
    which is not the average of a VBR file). The average is taken to be the usual nominal
    bitrate within 10 % of it, else rounded to 1 kbps.
    """
    if codec not in ("vorbis", "opus", "mp3", "aac"):
        return None
    if frame_chain is not None and not frame_chain.states_frame_count:
        bitrate = frame_chain.average_bitrate_bps
    else:
        try:
            bitrate = int(mutagen.File(str(path)).info.bitrate or 0)
        except (mutagen.MutagenError, AttributeError):
            return None
    if not bitrate or codec == "vorbis":
        return bitrate or None
    nearest = min(_NOMINAL_BITRATES_BPS, key=lambda nominal: abs(nominal - bitrate))
    return nearest if abs(nearest - bitrate) <= 0.1 * nearest else round(bitrate, -3)


def _checked_length(path: Path, samples: np.ndarray, decode_error: str | None, probe: _Probe) -> np.ndarray:
    """Check the decoded audio against the stated length; cut decoder padding beyond it."""
    decoded = samples.shape[1]
    stated = probe.stated_frames
    tolerance = _LENGTH_TOLERANCE_FRAMES.get(probe.format.codec, 0)
    if stated is not None and decoded < stated - tolerance:
        raise AudioFileError(
            f"the file is truncated (header promises {stated} frames, only {decoded} are there)", path)
    if decode_error is not None:
        raise AudioFileError(
            f"the file is damaged: decoding stopped after {decoded} frames ({decode_error})", path)
    if probe.format.container in ("ogg", "opus") and not _ogg_stream_is_complete(path):
        raise AudioFileError("the file is truncated (its Ogg stream stops before its last page)", path)
    if stated is not None and decoded > stated:
        samples = samples[:, :stated]
    if samples.shape[1] == 0:
        raise AudioFileError("the file holds no audio (0 samples)", path)
    return samples


def _looks_like_ogg(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"OggS"


def _ogg_stream_is_complete(path: Path) -> bool:
    """Whether the file's last Ogg page carries the end-of-stream flag."""
    try:
        with open(path, "rb") as file:
            serial = OggPage(file).serial
            last = OggPage.find_last(file, serial)
    except (mutagen.MutagenError, OSError, ValueError):
        return False
    return last is not None and last.last


def _check_layout(path: Path, sample_rate_hz: int, num_channels: int) -> None:
    if num_channels > MAX_CHANNELS:
        raise AudioFileError(
            f"the audio has {num_channels} channels; harmonycloak handles at most {MAX_CHANNELS}", path)
    if num_channels < 1:
        raise AudioFileError("the audio has no channels", path)
    if not MIN_SAMPLE_RATE_HZ <= sample_rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise AudioFileError(
            f"the sample rate is {sample_rate_hz} Hz; harmonycloak handles "
            f"{MIN_SAMPLE_RATE_HZ} Hz to {MAX_SAMPLE_RATE_HZ} Hz", path)


def _check_finite(path: Path, samples: np.ndarray) -> None:
    bad = ~np.isfinite(samples)
    if bad.any():
        first_frame = int(np.argmax(bad.any(axis=0)))
        raise AudioFileError(
            f"the audio holds {int(bad.sum())} invalid samples (NaN or infinite values), "
            f"the first at frame {first_frame}", path)


# --- writing ---------------------------------------------------------------------------------

def write_audio(audio: Audio, path: str | Path, *, format: AudioFormat | None = None,
                tags_from: str | Path | None = None) -> Path:
    """Write ``audio`` to ``path`` atomically and return the path.

    Args:
        audio: samples (channels, frames) float32 in [-1, 1] (integer formats clip beyond).
        path: the file to write; replaced as a whole only once it is complete.
        format: how to store it. Default: ``audio.format`` when the file name's extension fits
            its container, else the format the extension stands for (`audio_format_for_path`),
            keeping the source's bit depth (lossless to lossless) or bitrate (lossy to lossy).
        tags_from: a file whose tags and cover art to copy (see harmonycloak.io.tags).

    Sample rate, channels and length are kept, except where the codec cannot store the rate:
    then the audio is resampled (polyphase, scipy) to the nearest higher rate it stores, or
    its highest. That concerns Opus (8/12/16/24/48 kHz, so 44.1 kHz becomes 48 kHz), MP3
    (8-48 kHz) and AAC (8-96 kHz). Integer formats are rounded to the nearest level, without
    dither. FLAC keeps at most 24 bits; 32-bit and float sources are stored as 24-bit.
    Channels are in WAV order (L R C LFE ...); MP3 takes 1-2 channels, Opus all but 5 and 7.

    Raises:
        AudioFileError: the audio is invalid, the format cannot be written or contradicts the
            file name, or writing fails; no file (nor temporary file) is left behind then.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioFileError("this is a folder; give the name of a file to write", path)
    fmt = output_format(audio.format, path, format)
    samples = _checked_samples(audio, path)
    samples, rate = _fit_encoder(fmt, samples, audio.sample_rate_hz, path)
    try:
        with atomic_output(path) as temp:
            _WRITERS[fmt.codec](samples, rate, fmt, temp)
            if tags_from is not None:
                _copy_tags_or_fail(Path(tags_from), temp, path)
            if fmt.codec in ("vorbis", "opus"):
                renumber_ogg_streams(temp)
    except HarmonyCloakError:
        raise
    except OSError as error:
        raise AudioFileError(f"writing the file failed ({error.strerror or error})", path) from error
    except (RuntimeError, ValueError, TypeError, av.error.FFmpegError, mutagen.MutagenError) as error:
        raise AudioFileError(f"the {fmt.codec} encoder failed ({error})", path) from error
    return path


def _copy_tags_or_fail(source: Path, temp: Path, path: Path) -> None:
    try:
        copy_tags(source, temp)
    except (mutagen.MutagenError, OSError, ValueError) as error:
        raise AudioFileError(f"could not copy the tags from {source} ({error})", path) from error


def _checked_samples(audio: Audio, path: Path) -> np.ndarray:
    """The samples as C-contiguous float32 (channels, frames), after checking them."""
    samples = np.asarray(audio.samples)
    if samples.ndim != 2:
        raise AudioFileError(f"the audio must be (channels, frames), got shape {samples.shape}", path)
    _check_layout(path, int(audio.sample_rate_hz), samples.shape[0])
    if samples.shape[1] == 0:
        raise AudioFileError("there is no audio to write (0 samples)", path)
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    _check_finite(path, samples)
    return samples


def _fit_encoder(fmt: AudioFormat, samples: np.ndarray, rate: int, path: Path) -> tuple[np.ndarray, int]:
    """Bring the audio to a channel count and sample rate the codec stores (see write_audio)."""
    counts = _ENCODER_CHANNEL_COUNTS.get(fmt.codec)
    if counts is not None and samples.shape[0] not in counts:
        raise AudioFileError(
            f"{fmt.codec.upper()} output is possible with {', '.join(map(str, counts))} channels, "
            f"not {samples.shape[0]}; choose another format", path)
    allowed = ENCODER_SAMPLE_RATES_HZ.get(fmt.codec)
    if allowed is None or rate in allowed:
        return samples, rate
    target = min((r for r in allowed if r >= rate), default=max(allowed))
    resampled = resample(samples, rate, target)
    return np.ascontiguousarray(resampled, dtype=np.float32), target


def check_output_path(input_path: str | Path, output_path: str | Path, overwrite: bool = False) -> None:
    """Refuse an output that is a folder, or, unless ``overwrite``, the input file itself or an
    existing file (see `atomic.refuse_to_replace`).

    Raises:
        AudioFileError: naming the output path; OutputExistsError: it exists already.
    """
    refuse_to_replace(input_path, output_path, overwrite, AudioFileError)
