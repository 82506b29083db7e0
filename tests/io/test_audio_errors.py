"""Bad input raises AudioFileError with one line that names the file; bad output leaves nothing."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from audio_helpers import lag_frames, music_like
from input_makers import decode_with_ffmpeg, encode_with_ffmpeg, lame_mp3, mp3_frame_offsets
from harmonycloak.errors import AudioFileError, HarmonyCloakError
from harmonycloak.io import audio as audio_io
from harmonycloak.io.audio import check_output_path, read_audio, write_audio
from harmonycloak.music import Audio, AudioFormat


def _raises(path: Path, *words: str, call=read_audio) -> AudioFileError:
    """Call ``call(path)``; it must raise AudioFileError naming ``path`` on one line, with ``words``."""
    with pytest.raises(AudioFileError) as caught:
        call(path)
    message = str(caught.value)
    assert isinstance(caught.value, HarmonyCloakError)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return caught.value


def _wav_header(num_channels: int, rate: int, bits: int, data_bytes: int) -> bytes:
    """A canonical 44-byte PCM WAV header (RIFF/WAVE, fmt, data) from the WAVE spec."""
    block_align = num_channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, num_channels, rate, rate * block_align, block_align, bits)
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", data_bytes))


def _write_cut(tmp_path: Path, ext: str, keep_fraction: float = 0.5, rate: int = 48000) -> Path:
    whole = write_audio(Audio(music_like(2, rate, duration_s=1.0), rate), tmp_path / f"whole.{ext}")
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:int(len(data) * keep_fraction)])
    return cut


# --- reading ---------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    _raises(tmp_path / "nothing.wav", "does not exist")


def test_folder(tmp_path):
    folder = tmp_path / "album.wav"
    folder.mkdir()
    _raises(folder, "folder")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.flac"
    path.touch()
    _raises(path, "empty")


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("These are my lyrics, not a recording.\n" * 50)
    _raises(path, "not an audio file")


def test_random_bytes_named_mp3(tmp_path):
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(3).bytes(20_000))
    _raises(path, "not an audio file")


@pytest.mark.parametrize("major, ext", [("AIFF", "aiff"), ("AU", "au"), ("AIFF", "wav")])
def test_unsupported_format_lists_the_supported_ones(tmp_path, major, ext):
    path = tmp_path / f"song.{ext}"
    soundfile.write(str(path), np.zeros((1000, 2)), 44100, format=major)
    _raises(path, "does not support", "WAV", "FLAC", "MP3", "M4A", "Opus")


def test_video_without_audio(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    _raises(path, "no audio")


def test_truncated_wav_hand_made_header(tmp_path):
    """A header promising 441000 mono 16-bit frames, followed by only 1023 of them."""
    path = tmp_path / "song.wav"
    path.write_bytes(_wav_header(1, 44100, 16, 441000 * 2) + np.zeros(1023, "<i2").tobytes())
    _raises(path, "the file is truncated (header promises 441000 frames, only 1023 are there)")


def test_truncated_wav_stereo_24_bit_odd_bytes(tmp_path):
    """Cut in the middle of a frame: only whole frames count (6 bytes per stereo 24-bit frame)."""
    path = tmp_path / "song.wav"
    path.write_bytes(_wav_header(2, 48000, 24, 1000 * 6) + bytes(6 * 10 + 4))
    _raises(path, "header promises 1000 frames, only 10 are there")


def test_truncated_flac(tmp_path):
    rate, frames = 44100, 30_000
    path = tmp_path / "song.flac"
    soundfile.write(str(path), music_like(2, rate, duration_s=frames / rate).T, rate, subtype="PCM_16")
    data = path.read_bytes()
    # STREAMINFO (FLAC spec): after "fLaC" and a 4-byte block header, 10 bytes of block sizes
    # and frame sizes, then 20 bits rate, 3 channels-1, 5 bits-1, 36 bits total samples.
    packed = int.from_bytes(data[8 + 10:8 + 18], "big")
    assert packed & ((1 << 36) - 1) == frames
    path.write_bytes(data[:len(data) // 2])
    _raises(path, "truncated", f"header promises {frames} frames")


@pytest.mark.parametrize("ext", ["mp3", "ogg", "opus", "m4a"])
def test_truncated_lossy_files(tmp_path, ext):
    _raises(_write_cut(tmp_path, ext), "truncated")


LAME_DELAY_FRAMES = 576 + 529  # LAME's encoder delay plus the decoder's, in front of every LAME MP3


@pytest.mark.parametrize("vbr", [False, True], ids=["cbr", "vbr"])
def test_lame_mp3_without_xing_frame_is_read_whole(tmp_path, vbr):
    """lameenc writes no Xing frame: the file states no length, and the length libsndfile
    guesses from the file size must neither refuse it nor cut it short."""
    rate = 44100
    song = music_like(2, rate, duration_s=3.0)
    path = lame_mp3(tmp_path / "song.mp3", song, rate, vbr=vbr)
    data = path.read_bytes()
    first_frame = mp3_frame_offsets(data)[0]
    assert data[:3] == b"ID3" and not any(tag in data[first_frame:first_frame + 64] for tag in (b"Xing", b"Info"))
    audio = read_audio(path)
    reference, _, _ = decode_with_ffmpeg(path)
    assert audio.num_frames == reference.shape[1] >= song.shape[1] + LAME_DELAY_FRAMES
    assert lag_frames(song[0], audio.samples[0, :song.shape[1]]) == LAME_DELAY_FRAMES


@pytest.mark.parametrize("vbr", [False, True], ids=["cbr", "vbr"])
def test_lame_mp3_without_xing_frame_cut_inside_a_frame_is_truncated(tmp_path, vbr):
    whole = lame_mp3(tmp_path / "whole.mp3", music_like(2, 44100, duration_s=2.0), 44100, vbr=vbr).read_bytes()
    offsets = mp3_frame_offsets(whole)
    middle = offsets[len(offsets) // 2]
    path = tmp_path / "cut.mp3"
    path.write_bytes(whole[:middle + 100])  # the header and 96 bytes of a frame of over 100 bytes
    _raises(path, "truncated", "MP3 frame", "100 of its")


def test_lame_mp3_without_xing_frame_cut_between_frames_reads_as_a_shorter_piece(tmp_path):
    whole = lame_mp3(tmp_path / "whole.mp3", music_like(2, 44100, duration_s=2.0), 44100).read_bytes()
    offsets = mp3_frame_offsets(whole)
    path = tmp_path / "cut.mp3"
    path.write_bytes(whole[:offsets[40]])  # 40 whole frames: nothing states that more should follow
    assert read_audio(path).num_frames == decode_with_ffmpeg(path)[0].shape[1] == 40 * 1152


def test_mp3_with_xing_frame_cut_between_frames_is_truncated(tmp_path):
    """Cut exactly between two frames, no frame is cut off: the Xing frame count tells."""
    rate = 44100
    whole = encode_with_ffmpeg(tmp_path / "whole.mp3", music_like(2, rate, duration_s=2.0), rate, "libmp3lame")
    offsets = mp3_frame_offsets(whole.read_bytes())
    path = tmp_path / "cut.mp3"
    path.write_bytes(whole.read_bytes()[:offsets[-20]])
    _raises(path, "truncated", "header promises")


@pytest.mark.parametrize("xing", [False, True], ids=["lameenc", "ffmpeg-xing"])
def test_mp3_with_junk_between_frames_is_read(tmp_path, xing):
    """Players skip junk between frames (a damaged download, two files joined); so does
    reading, losing at most the one frame (1152 samples) the junk runs into."""
    rate = 44100
    song = music_like(2, rate, duration_s=2.0)
    clean = (encode_with_ffmpeg(tmp_path / "clean.mp3", song, rate, "libmp3lame") if xing
             else lame_mp3(tmp_path / "clean.mp3", song, rate))
    data = clean.read_bytes()
    middle = mp3_frame_offsets(data)[30]
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(data[:middle] + bytes(range(1, 200)) + data[middle:])
    damaged, whole = read_audio(junk).samples, read_audio(clean).samples
    assert whole.shape[1] - damaged.shape[1] in (0, 1152)
    before_junk = 29 * 1152 - 1105 - 576  # the 30th frame's first sample, less LAME's delay, less a granule of overlap
    assert np.array_equal(damaged[:, :before_junk], whole[:, :before_junk])


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "mp4", "aac"])
def test_text_file_under_every_audio_extension(tmp_path, ext):
    path = tmp_path / f"notes.{ext}"
    path.write_text("These are my lyrics, not a recording.\n" * 50)
    _raises(path, "not an audio file")


def test_zero_length_wav(tmp_path):
    path = tmp_path / "silence.wav"
    path.write_bytes(_wav_header(2, 44100, 16, 0))
    _raises(path, "no audio (0 samples)")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_wav_with_nan_or_inf(tmp_path, bad):
    samples = np.zeros((2000, 2), np.float32)
    samples[1234, 1] = bad
    path = tmp_path / "broken.wav"
    soundfile.write(str(path), samples, 44100, subtype="FLOAT")
    _raises(path, "1 invalid samples", "frame 1234")


def test_more_than_eight_channels(tmp_path):
    path = tmp_path / "surround.wav"
    soundfile.write(str(path), np.zeros((100, 9)), 48000)
    _raises(path, "9 channels", "at most 8")


@pytest.mark.parametrize("rate", [4000, 7999, 192001, 384000])
def test_sample_rate_out_of_range(tmp_path, rate):
    path = tmp_path / "odd_rate.wav"
    soundfile.write(str(path), np.zeros((100, 1)), rate)
    _raises(path, f"{rate} Hz", "8000 Hz to 192000 Hz")


@pytest.mark.parametrize("rate", [8000, 192000])
def test_sample_rate_limits_are_accepted(tmp_path, rate):
    path = tmp_path / "edge.wav"
    soundfile.write(str(path), np.full((100, 1), 0.25), rate)
    assert read_audio(path).sample_rate_hz == rate


# --- writing ---------------------------------------------------------------------------------

def _ok_audio(num_channels: int = 2, rate: int = 44100) -> Audio:
    return Audio(music_like(num_channels, rate, duration_s=0.2), rate)


def _nothing_written(folder: Path, *keep: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(keep)


@pytest.mark.parametrize("audio, words", [
    (Audio(np.full((2, 100), np.nan, np.float32), 44100), ("200 invalid samples",)),
    (Audio(np.zeros((9, 100), np.float32), 44100), ("9 channels",)),
    (Audio(np.zeros((1, 100), np.float32), 4000), ("4000 Hz",)),
    (Audio(np.zeros((2, 0), np.float32), 44100), ("no audio",)),
    (Audio(np.zeros(100, np.float32), 44100), ("(channels, frames)",)),
], ids=["nan", "channels", "rate", "empty", "1-d"])
def test_write_refuses_invalid_audio(tmp_path, audio, words):
    out = tmp_path / "out.flac"
    _raises(out, *words, call=lambda p: write_audio(audio, p))
    _nothing_written(tmp_path)


@pytest.mark.parametrize("ext, num_channels", [("mp3", 3), ("opus", 5), ("opus", 7)])
def test_write_channel_counts_the_encoder_cannot_take_are_refused(tmp_path, ext, num_channels):
    out = tmp_path / f"out.{ext}"
    _raises(out, f"not {num_channels}", call=lambda p: write_audio(_ok_audio(num_channels, 48000), p))
    _nothing_written(tmp_path)


def test_write_into_a_folder_path_is_refused(tmp_path):
    folder = tmp_path / "out.wav"
    folder.mkdir()
    _raises(folder, "folder", call=lambda p: write_audio(_ok_audio(), p))


def test_write_into_missing_folder(tmp_path):
    _raises(tmp_path / "no" / "such" / "out.wav", "does not exist", call=lambda p: write_audio(_ok_audio(), p))


def test_write_extension_contradicting_format(tmp_path):
    out = tmp_path / "out.mp3"
    _raises(out, "'.mp3'", "FLAC", call=lambda p: write_audio(_ok_audio(), p, format=AudioFormat("flac", "flac", "PCM_16")))
    _nothing_written(tmp_path)


def test_write_unknown_extension_without_format(tmp_path):
    _raises(tmp_path / "out.xyz", "not a supported audio file type", call=lambda p: write_audio(_ok_audio(), p))


def test_write_with_missing_tags_source_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp3"
    _raises(out, "could not copy the tags", call=lambda p: write_audio(_ok_audio(), p, tags_from=tmp_path / "gone.mp3"))
    _nothing_written(tmp_path)


def test_encoder_failure_leaves_no_file_and_keeps_an_existing_one(tmp_path, monkeypatch):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the previous version")

    def half_then_fail(samples, rate, fmt, path):
        Path(path).write_bytes(b"RIFF half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(audio_io._WRITERS, "pcm", half_then_fail)
    _raises(out, "disk on fire", call=lambda p: write_audio(_ok_audio(), p))
    _nothing_written(tmp_path, "out.wav")
    assert out.read_bytes() == b"the previous version"


def test_successful_write_leaves_only_the_file_with_usual_permissions(tmp_path):
    out = write_audio(_ok_audio(), tmp_path / "out.m4a")
    _nothing_written(tmp_path, "out.m4a")
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --- check_output_path ------------------------------------------------------------------------

def test_output_same_as_input_is_refused_unless_overwrite(tmp_path):
    source = tmp_path / "song.wav"
    soundfile.write(str(source), np.zeros(10), 8000)
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.wav"
    link.symlink_to(source)
    hard = tmp_path / "hard.wav"
    os.link(source, hard)
    for same in (source, tmp_path / "sub" / ".." / "song.wav", link, hard):
        _raises(same, "replace the original", call=lambda p: check_output_path(source, p, overwrite=False))
        check_output_path(source, same, overwrite=True)
    check_output_path(source, tmp_path / "song.protected.wav", overwrite=False)


def test_output_folder_is_refused(tmp_path):
    source = tmp_path / "song.wav"
    soundfile.write(str(source), np.zeros(10), 8000)
    _raises(tmp_path, "folder", call=lambda p: check_output_path(source, p, overwrite=True))
