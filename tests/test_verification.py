import numpy as np
import pytest

from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio
from harmonycloak import verify as verify_files


@pytest.fixture
def chord_wav(tmp_path):
    rate = 44_100
    time = np.arange(3 * rate) / rate
    chord = sum(0.15 * np.sin(2 * np.pi * f * time) for f in (220.0, 277.2, 329.6))
    return write_audio(Audio(np.stack([chord, chord]).astype(np.float32), rate), tmp_path / "chord.wav")


def test_a_plain_reencode_measures_exactly_the_codec_alone(chord_wav, tmp_path):
    # The "protected" file is the original, only encoded as MP3: all of its difference is the
    # codec's, so the codec-alone floor must equal the measured change.
    mp3 = write_audio(read_audio(chord_wav), tmp_path / "chord.mp3")
    result = verify_files(chord_wav, mp3, protection_check=False, visqol=False)
    audible = result["audibility"]
    bitrate_kbps = read_audio(mp3).format.bitrate_bps // 1000
    assert audible["codec_alone"]["format"] == f"mp3 {bitrate_kbps} kbps"
    assert audible["codec_alone"]["snr_db"] == pytest.approx(audible["snr_db"], abs=0.01)
    assert 10 < audible["snr_db"] < 100  # a real lossy change, not an identical file (inf)


def test_lossless_protected_files_have_no_codec_floor(chord_wav, tmp_path):
    flac = write_audio(read_audio(chord_wav), tmp_path / "chord.flac")
    result = verify_files(chord_wav, flac, protection_check=False, visqol=False)
    assert "codec_alone" not in result["audibility"]
    assert result["audibility"]["snr_db"] > 80  # 16-bit to 16-bit: the same samples
