"""Gapless information in written lossy files, checked from the bytes and by two decoders."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from mutagen.mp4 import MP4

from audio_helpers import chirp_signal, lag_frames, parse_lame_tag
from input_makers import decode_with_ffmpeg
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio, AudioFormat

# LAME's encoder delay as its tag states it: 576 samples (one granule); decoders add the
# 529-sample delay of the MP3 synthesis filter themselves (1105 in all).
LAME_TAG_DELAY = 576


@pytest.mark.parametrize("rate, num_channels", [(44100, 2), (48000, 1), (22050, 2), (16000, 1)])
def test_mp3_lame_tag_states_delay_and_padding_that_add_up(tmp_path, rate, num_channels):
    samples = chirp_signal(num_channels, rate, duration_s=0.4)
    path = write_audio(Audio(samples, rate), tmp_path / "x.mp3", format=AudioFormat("mp3", "mp3", bitrate_bps=128_000))
    tag = parse_lame_tag(path)
    assert tag["delay"] == LAME_TAG_DELAY
    # The frames hold delay + music + padding, and the padding is less than one frame plus
    # the decoder's 529-sample tail (LAME pads to whole frames after its own flush).
    assert tag["frames"] * tag["samples_per_frame"] - tag["delay"] - tag["padding"] == samples.shape[1]
    assert 0 <= tag["padding"] < tag["samples_per_frame"] + 529 + 576


@pytest.mark.parametrize("rate", [44100, 32000])
def test_mp3_aligned_in_both_decoders_impulse_train(tmp_path, rate):
    """libsndfile (mpg123) and ffmpeg both trim by the LAME tag: each click of an impulse
    train lands on its own sample, and the lengths are the input's."""
    frames = int(0.5 * rate)
    samples = np.zeros((2, frames), np.float32)
    clicks = np.arange(1200, frames - 1200, 2205)
    samples[:, clicks] = 0.8
    samples[1] *= -0.5  # the right channel differs: a channel swap would show
    path = write_audio(Audio(samples, rate), tmp_path / "x.mp3", format=AudioFormat("mp3", "mp3", bitrate_bps=192_000))

    by_mpg123, mpg123_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    by_ffmpeg, ffmpeg_rate, _ = decode_with_ffmpeg(path)
    ours = read_audio(path).samples
    for decoded in (by_mpg123.T, by_ffmpeg, ours):
        assert decoded.shape == samples.shape
        for channel in (0, 1):
            assert lag_frames(samples[channel], decoded[channel]) == 0
        # the largest samples of the decoded left channel sit on the clicks
        peaks = np.sort(np.argsort(np.abs(decoded[0]))[-len(clicks):])
        np.testing.assert_array_equal(peaks, clicks)
    assert mpg123_rate == ffmpeg_rate == rate


def test_m4a_states_exact_length_in_edit_list_and_itunsmpb(tmp_path):
    rate = 44100
    samples = chirp_signal(2, rate, duration_s=0.3)
    path = write_audio(Audio(samples, rate), tmp_path / "x.m4a", format=AudioFormat("m4a", "aac", bitrate_bps=128_000))
    _, _, stated_by_ffmpeg = decode_with_ffmpeg(path)
    assert stated_by_ffmpeg == samples.shape[1]
    fields = bytes(MP4(str(path)).tags["----:com.apple.iTunes:iTunSMPB"][0]).decode().split()
    priming, padding, length = int(fields[1], 16), int(fields[2], 16), int(fields[3], 16)
    assert (priming, length) == (1024, samples.shape[1])  # ffmpeg's AAC encoder primes 1024 samples
    assert (priming + length + padding) % 1024 == 0 and 0 <= padding < 1024 + 1024


def test_m4a_without_edit_list_uses_itunsmpb(tmp_path):
    """A file whose only gapless information is iTunSMPB (as some encoders write) is cut to
    the length the tag states, and starts on time."""
    import av

    rate = 44100
    samples = chirp_signal(1, rate, duration_s=0.3)
    path = tmp_path / "no_edit_list.m4a"
    with av.open(str(path), "w", format="ipod", options={"use_editlist": "0"}) as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout, stream.bit_rate = "mono", 128_000
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    frames = samples.shape[1]
    padding = -(frames + 1024) % 1024
    tags = MP4(str(path))
    tags["----:com.apple.iTunes:iTunSMPB"] = [
        f" 00000000 00000400 {padding:08X} {frames:016X}".encode() + b" 00000000" * 8]
    tags.save()

    back = read_audio(path)
    assert back.samples.shape == samples.shape
    assert lag_frames(samples[0], back.samples[0]) == 0
