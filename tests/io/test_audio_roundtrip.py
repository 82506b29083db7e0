"""Round trips through every format: format, rate, channels, length, depth or bitrate kept;
lossless bit-exact, lossy close and aligned to the sample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile

from audio_helpers import chirp_signal, lag_frames, music_like, snr_db
from input_makers import decode_with_ffmpeg
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio, AudioFormat

LOSSLESS = [
    ("wav", AudioFormat("wav", "pcm", subtype="PCM_16")),
    ("wav", AudioFormat("wav", "pcm", subtype="PCM_24")),
    ("wav", AudioFormat("wav", "pcm", subtype="FLOAT")),
    ("flac", AudioFormat("flac", "flac", subtype="PCM_16")),
    ("flac", AudioFormat("flac", "flac", subtype="PCM_24")),
    ("m4a", AudioFormat("m4a", "alac", subtype="PCM_16")),
    ("m4a", AudioFormat("m4a", "alac", subtype="PCM_24")),
]

# (extension, format, sample rates, SNR floor in dB). The floors are waveform SNRs on the
# music-like test signal, 3-6 dB under the lowest each encoder reaches over these rates and
# channel counts (MP3 128k: 18.9 dB, AAC 128k: 17.6, Vorbis 64k: 15.6, Opus 96k: 18.5; stereo
# is lowest, as joint-stereo coding spends few bits on the small difference between the
# channels). Perceptual codecs do not aim at waveform fidelity, so the floors are loose; they
# catch a wrong gain, polarity, channel order or a gross shift. Alignment to the sample is
# checked separately by cross-correlation.
LOSSY = [
    ("mp3", AudioFormat("mp3", "mp3", bitrate_bps=128_000), (44100, 22050), 15.0),
    ("m4a", AudioFormat("m4a", "aac", bitrate_bps=128_000), (44100, 48000), 12.0),
    ("ogg", AudioFormat("ogg", "vorbis", bitrate_bps=64_000), (44100, 22050), 12.0),
    ("opus", AudioFormat("opus", "opus", bitrate_bps=96_000), (48000, 16000), 14.0),
]


def _ints(num_channels: int, frames: int, bits: int, seed: int = 1) -> np.ndarray:
    """Random full-range integer samples, the extremes included."""
    rng = np.random.default_rng(seed)
    ints = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=(num_channels, frames))
    ints[:, 0], ints[:, 1] = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return ints


@pytest.mark.parametrize("num_channels", [1, 2])
@pytest.mark.parametrize("rate", [44100, 96000])
@pytest.mark.parametrize("ext, fmt", LOSSLESS, ids=lambda v: getattr(v, "subtype", v))
def test_lossless_round_trip_is_bit_exact(tmp_path, ext, fmt, rate, num_channels):
    frames = 4801  # not a multiple of any codec block size
    bits = {"PCM_16": 16, "PCM_24": 24, "FLOAT": 16}[fmt.subtype]
    ints = _ints(num_channels, frames, bits)
    samples = (ints / 2.0 ** (bits - 1)).astype(np.float32)  # exact in float32 for ≤ 24 bits

    path = write_audio(Audio(samples, rate), tmp_path / f"x.{ext}", format=fmt)
    back = read_audio(path)

    assert back.format == fmt
    assert back.sample_rate_hz == rate
    assert back.samples.shape == (num_channels, frames)
    assert back.samples.dtype == np.float32
    np.testing.assert_array_equal(back.samples, samples)
    if ext in ("wav", "flac") and fmt.subtype != "FLOAT":  # libsndfile, asked for integers, sees them
        as_ints, _ = soundfile.read(str(path), dtype="int32", always_2d=True)
        np.testing.assert_array_equal(as_ints.T >> (32 - bits), ints)


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_pcm16_file_written_elsewhere_reads_and_rewrites_identically(tmp_path, ext):
    """A PCM_16 file made by libsndfile directly: read gives ints / 32768; written again in
    its own format, the audio data is the same integers."""
    ints = _ints(2, 3000, 16).astype(np.int16)
    source = tmp_path / f"source.{ext}"
    soundfile.write(str(source), ints.T, 32000, subtype="PCM_16")

    audio = read_audio(source)
    np.testing.assert_array_equal(audio.samples, ints / 32768.0)
    assert audio.format == AudioFormat(ext, "pcm" if ext == "wav" else "flac", subtype="PCM_16")

    copy = write_audio(audio, tmp_path / f"copy.{ext}")
    again, rate = soundfile.read(str(copy), dtype="int16", always_2d=True)
    assert rate == 32000
    np.testing.assert_array_equal(again.T, ints)


def _lossy_cases():
    for ext, fmt, rates, floor in LOSSY:
        for rate in rates:
            for channels in (1, 2):
                yield pytest.param(ext, fmt, rate, channels, floor, id=f"{fmt.codec}-{rate}-{channels}ch")


@pytest.mark.parametrize("ext, fmt, rate, num_channels, snr_floor_db", list(_lossy_cases()))
def test_lossy_round_trip_keeps_format_length_and_alignment(tmp_path, ext, fmt, rate, num_channels, snr_floor_db):
    samples = music_like(num_channels, rate)
    path = write_audio(Audio(samples, rate), tmp_path / f"x.{ext}", format=fmt)
    back = read_audio(path)

    assert (back.format.container, back.format.codec) == (fmt.container, fmt.codec)
    assert back.sample_rate_hz == rate
    assert back.samples.shape == samples.shape  # same frame count: delay and padding removed
    assert lag_frames(samples[0], back.samples[0]) == 0
    assert snr_db(samples, back.samples) > snr_floor_db
    # Nominal bitrate kept: exact for MP3 (CBR), to libvorbis' interpolation for Vorbis (the
    # header's nominal value); AAC and Opus are measured averages over 0.6 s, headers and
    # the encoder's first-frame overhead included: within 25 %.
    tolerance = {"mp3": 0.0, "vorbis": 0.002}.get(fmt.codec, 0.25)
    assert back.format.bitrate_bps == pytest.approx(fmt.bitrate_bps, rel=tolerance)


@pytest.mark.parametrize("ext, fmt", [(e, f) for e, f, _r, _s in LOSSY], ids=lambda v: getattr(v, "codec", v))
def test_lossy_files_decode_aligned_in_ffmpeg_too(tmp_path, ext, fmt):
    """A second decoder (ffmpeg, where read_audio used libsndfile for all but AAC) returns the
    same length and no shift: the gapless information is in the file, not in our reader."""
    rate = 48000
    samples = chirp_signal(2, rate)
    path = write_audio(Audio(samples, rate), tmp_path / f"x.{ext}", format=fmt)
    decoded, decoded_rate, stated_frames = decode_with_ffmpeg(path)
    assert decoded_rate == rate
    if fmt.codec == "aac":
        # ffmpeg's decoder applies the edit list's start, not its end: it returns whole
        # 1024-sample frames; the length is the edit list's duration.
        assert stated_frames == samples.shape[1]
        assert samples.shape[1] <= decoded.shape[1] < samples.shape[1] + 1024
    elif fmt.codec == "vorbis":
        # ffmpeg's Vorbis decoder drops the end of the last packet (about 128 frames fewer
        # than libvorbis files hold); start alignment still holds.
        assert samples.shape[1] - 1024 < decoded.shape[1] <= samples.shape[1]
    else:
        assert decoded.shape == samples.shape
    assert lag_frames(samples[0], decoded[0]) == 0
    assert lag_frames(samples[1], decoded[1]) == 0


def test_opus_at_a_rate_opus_cannot_store_is_written_at_48_khz(tmp_path):
    rate = 44100
    samples = chirp_signal(1, rate)
    path = write_audio(Audio(samples, rate), tmp_path / "x.opus")
    back = read_audio(path)
    assert back.sample_rate_hz == 48000
    # scipy's polyphase resampler by 160/147 yields ceil(frames * 160 / 147) frames.
    assert back.num_frames == math.ceil(samples.shape[1] * 160 / 147)
    assert back.duration_s == pytest.approx(samples.shape[1] / rate, abs=1e-4)


def test_raw_aac_keeps_rate_channels_and_bitrate_but_not_the_priming(tmp_path):
    """ADTS states no encoder delay: the decoded audio is the input behind ffmpeg's 1024
    samples of priming, padded to whole 1024-sample frames (see harmonycloak.io.formats)."""
    rate = 44100
    samples = chirp_signal(2, rate)
    path = write_audio(Audio(samples, rate), tmp_path / "x.aac", format=AudioFormat("aac", "aac", bitrate_bps=128_000))
    back = read_audio(path)
    assert back.format == AudioFormat("aac", "aac", bitrate_bps=128_000)
    assert (back.sample_rate_hz, back.num_channels) == (rate, 2)
    assert lag_frames(samples[0], back.samples[0]) == 1024
    assert back.num_frames == 1024 * math.ceil((samples.shape[1] + 1024) / 1024)


def _channel_identity(reference: np.ndarray, decoded: np.ndarray) -> list[int]:
    """For each decoded channel, the reference channel it correlates with most."""
    frames = min(reference.shape[1], decoded.shape[1])
    a, b = reference[:, :frames].astype(np.float64), decoded[:, :frames].astype(np.float64)
    similarity = np.abs(a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1) + 1e-12)
    return [int(np.argmax(similarity[:, j])) for j in range(b.shape[0])]


_MULTICHANNEL = [
    (ext, fmt, count)
    for ext, fmt, counts in [
        ("wav", AudioFormat("wav", "pcm", subtype="PCM_16"), (3, 5, 6, 8)),
        ("flac", AudioFormat("flac", "flac", subtype="PCM_16"), (3, 5, 6, 8)),
        ("ogg", AudioFormat("ogg", "vorbis", bitrate_bps=256_000), (3, 5, 6, 7, 8)),
        ("opus", AudioFormat("opus", "opus", bitrate_bps=256_000), (3, 6, 8)),
        ("m4a", AudioFormat("m4a", "aac", bitrate_bps=384_000), (3, 4, 5, 6, 7, 8)),
        ("m4a", AudioFormat("m4a", "alac", subtype="PCM_16"), (3, 4, 5, 6, 7, 8)),
    ]
    for count in counts
]


@pytest.mark.parametrize("ext, fmt, num_channels", _MULTICHANNEL,
                         ids=[f"{f.codec}-{n}ch" for _e, f, n in _MULTICHANNEL])
def test_multichannel_keeps_channel_order_in_both_decoders(tmp_path, ext, fmt, num_channels):
    """Each channel carries its own low tone (40, 50, ... Hz: below the 120 Hz that codecs
    keep on an LFE channel); every channel comes back in its place, through read_audio and
    through ffmpeg (which maps Ogg's Vorbis channel order itself)."""
    rate = 48000
    t = np.arange(int(0.5 * rate)) / rate
    samples = np.stack([0.3 * np.sin(2 * np.pi * (40 + 10 * c) * t) for c in range(num_channels)]).astype(np.float32)
    path = write_audio(Audio(samples, rate), tmp_path / f"x.{ext}", format=fmt)
    back = read_audio(path)
    assert back.samples.shape == samples.shape
    decoded, _, _ = decode_with_ffmpeg(path)
    assert _channel_identity(samples, back.samples) == list(range(num_channels))
    assert _channel_identity(samples, decoded) == list(range(num_channels))


def test_long_vorbis_write_does_not_crash(tmp_path):
    """libsndfile 1.2.2 crashes (segfault) when one write call hands its Vorbis encoder about
    4 million frames; write_audio writes in blocks. 9 minutes of 8 kHz silence: ~1 s."""
    rate, frames = 8000, 4_200_000
    path = write_audio(Audio(np.zeros((1, frames), np.float32), rate), tmp_path / "long.ogg",
                       format=AudioFormat("ogg", "vorbis", bitrate_bps=32_000))
    assert soundfile.info(str(path)).frames == frames
