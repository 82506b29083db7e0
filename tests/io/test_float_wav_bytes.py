"""A float WAV carries no time of writing: the same samples give the same bytes (same seed, same output)."""

import numpy as np
import soundfile

from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio


def riff_chunk_ids(data: bytes) -> list[bytes]:
    """The ids of a RIFF file's top-level chunks, walked from the header (sizes are little-endian,
    odd sizes padded to even)."""
    ids, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        ids.append(data[offset : offset + 4])
        offset += 8 + size + size % 2
    return ids


def test_a_float_wav_has_no_peak_chunk_and_two_writes_are_the_same_bytes(tmp_path):
    samples = (0.5 * np.sin(np.linspace(0, 200, 8_000))).astype(np.float32)[None, :]
    source = tmp_path / "source.wav"
    soundfile.write(source, samples.T, 22_050, subtype="FLOAT")
    audio = read_audio(source)
    first = write_audio(audio, tmp_path / "first.wav").read_bytes()
    second = write_audio(audio, tmp_path / "second.wav").read_bytes()
    assert b"PEAK" in riff_chunk_ids(source.read_bytes())  # libsndfile's default: the chunk with a time stamp
    assert b"PEAK" not in riff_chunk_ids(first) and b"data" in riff_chunk_ids(first)
    assert first == second
    assert np.array_equal(read_audio(tmp_path / "first.wav").samples, audio.samples)
