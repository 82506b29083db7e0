"""File names → formats, format conversions on write, and a real recording read two ways."""

from __future__ import annotations

from pathlib import Path

import mutagen
import pytest
import soundfile

from audio_helpers import lag_frames, music_like, snr_db
from input_makers import decode_with_ffmpeg
from harmonycloak.errors import AudioFileError
from harmonycloak.io.audio import SUPPORTED_EXTENSIONS, audio_format_for_path, read_audio, write_audio
from harmonycloak.music import Audio, AudioFormat

ELF_LAND = Path(__file__).resolve().parents[2] / "examples" / "elf-land.ogg"


@pytest.mark.parametrize("name, container, codec", [
    ("a.wav", "wav", "pcm"), ("a.FLAC", "flac", "flac"), ("a.ogg", "ogg", "vorbis"), ("a.oga", "ogg", "vorbis"),
    ("a.opus", "opus", "opus"), ("a.Mp3", "mp3", "mp3"), ("a.m4a", "m4a", "aac"), ("a.mp4", "m4a", "aac"),
    ("a.aac", "aac", "aac"),
])
def test_audio_format_for_path(name, container, codec):
    fmt = audio_format_for_path(name)
    assert (fmt.container, fmt.codec) == (container, codec)
    assert (fmt.subtype is None) == fmt.is_lossy
    assert (fmt.bitrate_bps is not None) == fmt.is_lossy


def test_every_supported_extension_writes_and_reads_back(tmp_path):
    assert set(SUPPORTED_EXTENSIONS) == {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac"}
    audio = Audio(music_like(2, 48000, duration_s=0.2), 48000)
    for ext in SUPPORTED_EXTENSIONS:
        back = read_audio(write_audio(audio, tmp_path / f"x{ext}"))
        expected = audio_format_for_path(f"x{ext}")
        assert (back.format.container, back.format.codec, back.format.subtype) == (
            expected.container, expected.codec, expected.subtype), ext
        assert back.sample_rate_hz == 48000 and back.num_channels == 2


@pytest.mark.parametrize("name", ["song.aiff", "song", "song.wma"])
def test_unknown_extension_is_refused(name):
    with pytest.raises(AudioFileError, match="not a supported audio file type"):
        audio_format_for_path(name)


def test_default_format_follows_the_extension_and_keeps_depth_or_bitrate(tmp_path):
    rate = 44100
    samples = music_like(2, rate, duration_s=0.2)
    pcm24 = Audio(samples, rate, AudioFormat("wav", "pcm", subtype="PCM_24"))
    assert read_audio(write_audio(pcm24, tmp_path / "a.wav")).format.subtype == "PCM_24"   # source format
    assert read_audio(write_audio(pcm24, tmp_path / "a.flac")).format.subtype == "PCM_24"  # depth carried over
    assert soundfile.info(str(tmp_path / "a.flac")).subtype == "PCM_24"
    as_float = Audio(samples, rate, AudioFormat("wav", "pcm", subtype="FLOAT"))
    assert read_audio(write_audio(as_float, tmp_path / "b.flac")).format.subtype == "PCM_24"  # FLAC has no float

    mp3_96k = Audio(samples, rate, AudioFormat("mp3", "mp3", bitrate_bps=96_000))
    # mutagen averages over the Xing byte count: within 0.1 % of the CBR rate
    assert mutagen.File(write_audio(mp3_96k, tmp_path / "c.mp3")).info.bitrate == pytest.approx(96_000, rel=1e-3)
    m4a = read_audio(write_audio(mp3_96k, tmp_path / "c.m4a"))  # lossy to lossy: bitrate carried
    assert m4a.format.codec == "aac" and m4a.format.bitrate_bps == pytest.approx(96_000, rel=0.25)
    lossless_to_mp3 = read_audio(write_audio(pcm24, tmp_path / "d.mp3"))  # the extension's default
    assert lossless_to_mp3.format.bitrate_bps == audio_format_for_path("d.mp3").bitrate_bps


def test_explicit_format_wins_and_mp4_extension_is_accepted_for_m4a(tmp_path):
    rate = 48000
    audio = Audio(music_like(1, rate, duration_s=0.2), rate, AudioFormat("wav", "pcm", subtype="PCM_16"))
    out = write_audio(audio, tmp_path / "a.mp4", format=AudioFormat("m4a", "alac", subtype="PCM_24"))
    back = read_audio(out)
    assert back.format == AudioFormat("m4a", "alac", subtype="PCM_24")
    assert back.samples.shape == audio.samples.shape
    ogg_opus = write_audio(audio, tmp_path / "a.ogg", format=AudioFormat("opus", "opus", bitrate_bps=64_000))
    assert read_audio(ogg_opus).format.codec == "opus"


def test_real_music_read_matches_a_second_decoder():
    """elf-land.ogg (Ogg Vorbis, 44.1 kHz stereo, 96 kbps nominal): read_audio (libsndfile)
    and ffmpeg decode the same samples, except ffmpeg drops the last packet's tail."""
    audio = read_audio(ELF_LAND)
    assert audio.format == AudioFormat("ogg", "vorbis", None, 96_000)
    assert (audio.sample_rate_hz, audio.num_channels) == (44100, 2)
    info = mutagen.File(ELF_LAND).info
    assert audio.num_frames == round(info.length * 44100)  # the last granule position
    assert audio.source_path == ELF_LAND
    other, rate, _ = decode_with_ffmpeg(ELF_LAND)
    assert rate == 44100
    frames = min(other.shape[1], audio.num_frames)
    assert audio.num_frames - frames < 2048
    assert snr_db(other[:, :frames], audio.samples[:, :frames]) > 60  # two Vorbis decoders agree


def test_real_music_round_trip_in_its_own_format(tmp_path):
    """Read the Vorbis song, write it back as Vorbis: same nominal bitrate, rate, channels,
    length, tags; the re-encoded audio lines up with the decoded input."""
    audio = read_audio(ELF_LAND)
    out = write_audio(audio, tmp_path / "elf-land.ogg", tags_from=ELF_LAND)
    back = read_audio(out)
    assert back.format == audio.format
    assert back.samples.shape == audio.samples.shape
    middle = slice(10 * 44100, 12 * 44100)
    assert lag_frames(audio.samples[0, middle], back.samples[0, middle]) == 0
    # 96 kbps Vorbis re-encoding a 96 kbps Vorbis decode: about 20 dB on this orchestral piece.
    assert snr_db(audio.samples, back.samples) > 12
    original, copied = mutagen.File(ELF_LAND).tags, mutagen.File(out).tags
    assert sorted(original) == sorted(copied)
