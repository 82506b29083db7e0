"""Fuzzing the readers: real files with bits flipped, pieces cut out and bytes inserted.

The only outcomes allowed are a correct read (finite samples of a layout harmonycloak takes,
or a score with notes) or harmonycloak's own error with a one-line message; never another
exception, never a hang, never a file left beside the input. Hypothesis runs a fixed number
of examples per format, derandomised, so that every CI run tries the same files; a reader
that hangs inside C code is stopped by faulthandler's watchdog, which fails the run loudly.
"""

from __future__ import annotations

import faulthandler
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.io.audio import read_audio
from harmonycloak.io.midi import read_midi
from harmonycloak.music import Audio, Score
from input_makers import encode_with_ffmpeg, lame_mp3, tone, write_soundfile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HANG_S = 60  # a read that takes this long is a hang: faulthandler ends the run with every thread's stack
RATE = 22_050


def _seed_files(folder: Path) -> dict[str, bytes]:
    """One small real file per format, made by the tools musicians' files come from."""
    song = tone(RATE // 5, RATE, 2)
    made = {
        "wav": write_soundfile(folder / "s.wav", song, RATE),
        "flac": write_soundfile(folder / "s.flac", song, RATE, "PCM_24"),
        "ogg": write_soundfile(folder / "s.ogg", song, RATE, "VORBIS"),
        "mp3-lame": lame_mp3(folder / "s.mp3", song, RATE, bitrate_kbps=64),
        "mp3-xing": encode_with_ffmpeg(folder / "x.mp3", song, RATE, "libmp3lame", 64_000),
        "m4a": encode_with_ffmpeg(folder / "s.m4a", song, RATE, "aac", 64_000, muxer="ipod"),
        "opus": encode_with_ffmpeg(folder / "s.opus", tone(9_600, 48_000, 2), 48_000, "libopus", 32_000, muxer="ogg"),
        "mid": EXAMPLES / "bwv1.6.mid",
    }
    return {kind: path.read_bytes() for kind, path in made.items()}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    return _seed_files(tmp_path_factory.mktemp("seeds"))


# A mutation: ("flip", position, bit), ("cut", start, length) or ("insert", position, bytes).
# Positions are drawn large and taken modulo the current size; half of them fall in the
# first 64 bytes, where the headers are.
_position = st.one_of(st.integers(0, 63), st.integers(0, 2**31))
_mutation = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(0, 7)),
    st.tuples(st.just("cut"), _position, st.integers(1, 4096)),
    st.tuples(st.just("insert"), _position, st.binary(min_size=1, max_size=64)),
)


def mutated(data: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(data)
    for kind, position, argument in mutations:
        at = position % max(len(out), 1)
        if kind == "flip" and out:
            out[at] ^= 1 << argument
        elif kind == "cut":
            del out[at:at + argument]
        elif kind == "insert":
            out[at:at] = argument
    return bytes(out)


def _read_checked(kind: str, data: bytes) -> None:
    """Read ``data`` as a file of ``kind``; assert the outcome is allowed and nothing is left behind."""
    suffix = {"mp3-lame": ".mp3", "mp3-xing": ".mp3"}.get(kind, f".{kind}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(data)
        faulthandler.dump_traceback_later(HANG_S, exit=True)
        try:
            result = read_midi(path) if kind == "mid" else read_audio(path)
        except HarmonyCloakError as error:
            message = str(error)
            assert message.startswith(f"{path}: ") and "\n" not in message, message
        else:
            if isinstance(result, Score):
                assert result.num_notes > 0
            else:
                assert isinstance(result, Audio)
                samples = result.samples
                assert samples.dtype == np.float32 and samples.ndim == 2
                assert 1 <= samples.shape[0] <= 8 and samples.shape[1] > 0
                assert 8_000 <= result.sample_rate_hz <= 192_000
                assert np.isfinite(samples).all()
        finally:
            faulthandler.cancel_dump_traceback_later()
        assert [p.name for p in Path(folder).iterdir()] == [path.name]


FUZZ = settings(max_examples=60, derandomize=True, database=None, deadline=timedelta(seconds=20),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.parametrize("kind", ["wav", "flac", "ogg", "mp3-lame", "mp3-xing", "m4a", "opus", "mid"])
@FUZZ
@given(mutations=st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_real_files_read_or_raise_our_error(request, kind, mutations):
    _read_checked(kind, mutated(request.getfixturevalue("seeds")[kind], mutations))


@pytest.mark.parametrize("kind", ["wav", "flac", "ogg", "mp3-lame", "mp3-xing", "m4a", "opus", "mid"])
def test_unmutated_seed_files_read(seeds, kind):
    """The fuzzing starts from files that read: the mutations, not the seeds, are under test."""
    _read_checked(kind, seeds[kind])
