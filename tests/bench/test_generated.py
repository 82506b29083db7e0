"""The judges of generated music: the artist classifier reads the zoo encoder's embedding and
tells apart music that differs plainly, and refuses to judge without another artist."""

import numpy as np
import pytest

from harmonycloak.errors import SettingsError
from harmonycloak.settings import WORKING_RATE_HZ


def _tones(frequencies_hz, seconds=1.28, level=0.3):
    time_s = np.arange(round(seconds * WORKING_RATE_HZ)) / WORKING_RATE_HZ
    return [(level * np.sin(2 * np.pi * f * time_s)).astype(np.float32) for f in frequencies_hz]


def _noise(count, seed, seconds=1.28, level=0.1):
    rng = np.random.default_rng(seed)
    return [(level * rng.standard_normal(round(seconds * WORKING_RATE_HZ))).astype(np.float32) for _ in range(count)]


@pytest.fixture(scope="module")
def encoder():
    from harmonycloak.zoo import load_zoo_model

    return load_zoo_model("contrastive").eval()


def test_the_artist_classifier_knows_low_tones_from_noise_on_music_it_never_saw(encoder):
    from harmonycloak.bench.generated import song_embeddings, train_artist_classifier

    training = {"tones": _tones((220, 262, 330)), "noise": _noise(3, seed=0)}
    held_out = {"tones": _tones((247, 294)), "noise": _noise(2, seed=1), "nobody": _noise(1, seed=2)}
    judge = train_artist_classifier(encoder, "tones", training, held_out, window_s=0.32, seed=0)
    # 1.28 s in windows of 0.32 s: 4 windows a song
    assert judge.report["windows"] == {"tones": 12, "noise": 12}
    assert judge.report["held_out_windows"] == 16  # the unknown artist's song is not counted
    assert judge.report["artist_recall"] == 1.0 and judge.report["others_as_artist"] == 0.0
    assert judge.share(song_embeddings(encoder, _tones((277,)), 0.32)) == 1.0
    assert judge.share(song_embeddings(encoder, _noise(1, seed=3), 0.32)) == 0.0
    half = np.concatenate([song_embeddings(encoder, _tones((277,)), 0.32),
                           song_embeddings(encoder, _noise(1, seed=4), 0.32)])
    assert judge.share(half) == 0.5


def test_the_artist_classifier_needs_the_artist_and_someone_else(encoder):
    from harmonycloak.bench.generated import train_artist_classifier

    with pytest.raises(SettingsError, match="at least one other artist"):
        train_artist_classifier(encoder, "tones", {"tones": _tones((220,)), "noise": []}, {}, 0.32, 0)
    with pytest.raises(SettingsError, match="songs of 'tones'"):
        train_artist_classifier(encoder, "tones", {"noise": _noise(1, 0), "hum": _tones((50,))}, {}, 0.32, 0)
