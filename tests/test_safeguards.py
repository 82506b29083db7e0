"""What protection never does to the levels it writes."""

import numpy as np

from harmonycloak.metrics.perceptual import clipped_sample_count
from harmonycloak.safeguards import limit_to_source_range


def test_noise_takes_no_sample_to_full_scale_that_the_song_kept_under_it():
    song = np.array([[0.5, -0.9999, -1.0, 0.9999, 0.2]], dtype=np.float32)  # one sample already at −1 (clipped)
    noise = np.array([[0.1, -0.01, -0.01, 0.01, -0.05]], dtype=np.float32)
    protected = limit_to_source_range(song + noise, song)
    assert clipped_sample_count(protected) == clipped_sample_count(song) == 1  # nothing new at full scale
    np.testing.assert_allclose(protected[0], [0.6, -32767 / 32768, -1.0, 32767 / 32768, 0.15], atol=1e-7)
    # 16-bit PCM holds ±32767/32768 on both sides: written there, it reads back unclipped
    assert np.all(np.round(protected[0, [1, 3]] * 32768) == [-32767, 32767])


def test_a_float_song_beyond_full_scale_keeps_its_level_and_no_more():
    song = np.array([[1.5, -1.2, 0.3]], dtype=np.float32)
    protected = limit_to_source_range(song + np.float32(0.1), song)
    np.testing.assert_allclose(protected[0], [1.5, -1.1, 0.4], atol=1e-6)


def test_a_long_song_is_held_piece_by_piece_as_whole(monkeypatch):
    from harmonycloak import safeguards

    song = np.random.default_rng(0).uniform(-1, 1, (2, 5000)).astype(np.float32)
    noise = np.random.default_rng(1).normal(0, 0.05, song.shape).astype(np.float32)
    whole = limit_to_source_range(song + noise, song)
    monkeypatch.setattr(safeguards, "LIMIT_PIECE_SAMPLES", 333)
    np.testing.assert_array_equal(limit_to_source_range(song + noise, song), whole)
    assert np.all(np.abs(whole) <= np.maximum(32767 / 32768, np.abs(song)))
