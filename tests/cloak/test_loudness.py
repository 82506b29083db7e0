"""Loudness-neutral noise: the music's in-phase share is taken away, block by block."""

import numpy as np
import pyloudnorm
import pytest

from harmonycloak.cloak.loudness import k_weighted, loudness_neutral

RATE_HZ = 16_000


def music(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Two lanes of tones whose level swells and fades, (2, N)."""
    time = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    swell = 0.2 + 0.15 * np.sin(2 * np.pi * 0.7 * time)
    rng = np.random.default_rng(seed)
    return np.stack([swell * np.sin(2 * np.pi * f * time + rng.uniform(0, 2 * np.pi)) for f in (220.0, 1760.0)])


def test_a_scaled_copy_of_the_music_is_taken_away_entirely():
    clean = music()
    assert np.abs(loudness_neutral(0.1 * clean, clean, RATE_HZ)).max() < 1e-6


def test_noise_independent_of_the_music_is_kept_nearly_as_it_is():
    clean = music(seconds=4.0)
    noise = 0.01 * np.random.default_rng(1).standard_normal(clean.shape)
    neutral = loudness_neutral(noise, clean, RATE_HZ)
    # what is taken away is the projection (near 0) and half the noise-to-music power ratio of the music
    assert np.sqrt(np.mean((neutral - noise) ** 2)) < 0.1 * np.sqrt(np.mean(noise**2))


def test_no_loudness_change_is_left_as_pyloudnorm_measures_it_not_even_the_noise_s_own_power():
    clean = music(seconds=4.0)
    noise = 0.06 * clean + 0.01 * np.random.default_rng(2).standard_normal(clean.shape)  # in phase: +0.5 dB
    meter = pyloudnorm.Meter(RATE_HZ)
    before = meter.integrated_loudness(clean.T)
    assert meter.integrated_loudness((clean + noise).T) - before > 0.4
    neutral = loudness_neutral(noise, clean, RATE_HZ).astype(np.float64)
    # the projection alone would leave the random part's own K-weighted power, 10·log10(1 + ‖Kδ'‖² / ‖Kx‖²)
    random_part = neutral - np.sum(k_weighted(neutral, RATE_HZ) * k_weighted(clean, RATE_HZ)) \
        / np.sum(k_weighted(clean, RATE_HZ) ** 2) * clean
    own_db = 10 * np.log10(1 + np.sum(k_weighted(random_part, RATE_HZ) ** 2) / np.sum(k_weighted(clean, RATE_HZ) ** 2))
    assert own_db > 0.015  # about 16 dB under the music: 0.02 dB, which the projection alone would leave
    assert abs(meter.integrated_loudness((clean + neutral).T) - before) < 0.008


def test_the_share_keeps_the_power_by_the_formula_and_falls_back_to_the_projection():
    from harmonycloak.cloak.loudness import _power_keeping_share

    # P = 1, C = 0, D = 0.19: (1 − c)² + 0.19 = 1 → 1 − c = 0.9
    # P = 4, C = 2, D = 1: 4(1 − c)² + 4(1 − c) + 1 = 4 → 1 − c = (−4 + √64) / 8 = 0.5
    # P = 1, C = 0, D = 2: no c keeps it, the projection 0; P = 0: 0
    shares = _power_keeping_share(np.array([0.0, 2.0, 0.0, 0.0]), np.array([1.0, 4.0, 1.0, 0.0]),
                                  np.array([0.19, 1.0, 2.0, 1.0]))
    np.testing.assert_allclose(shares, [0.1, 0.5, 0.0, 0.0], atol=1e-12)


def test_k_weighting_lifts_high_frequencies_by_four_decibels_and_cuts_the_lowest():
    time = np.arange(2 * RATE_HZ) / RATE_HZ
    gain_db = {f: 20 * np.log10(np.std(k_weighted(np.sin(2 * np.pi * f * time), RATE_HZ)[RATE_HZ:]) * np.sqrt(2))
               for f in (10.0, 1000.0, 6000.0)}
    assert gain_db[6000.0] == pytest.approx(4.0, abs=0.3) and abs(gain_db[1000.0]) < 1.0 and gain_db[10.0] < -10.0


def test_a_song_read_piece_by_piece_gets_the_noise_it_gets_read_whole(monkeypatch):
    from harmonycloak.cloak import loudness

    clean = music(seconds=3.0)
    noise = 0.05 * clean + 0.01 * np.random.default_rng(3).standard_normal(clean.shape)
    whole = loudness_neutral(noise, clean, RATE_HZ)
    monkeypatch.setattr(loudness, "PIECE_S", 0.3)  # ten pieces, the filters' state carried across
    assert np.abs(loudness_neutral(noise, clean, RATE_HZ) - whole).max() < 1e-6


def test_music_that_k_weighting_all_but_removes_takes_away_no_more_than_the_noise():
    offset = np.full((1, 3 * RATE_HZ), 0.25)  # a DC offset: the 38 Hz high-pass leaves almost nothing of it
    noise = 0.001 * np.random.default_rng(4).standard_normal(offset.shape)
    neutral = loudness_neutral(noise, offset, RATE_HZ)
    assert np.sqrt(np.mean((neutral - noise) ** 2)) <= 1.01 * np.sqrt(np.mean(noise**2))
    assert np.abs(neutral).max() < 0.02


def test_written_into_the_noise_itself_it_is_the_same_as_into_a_new_array():
    clean = music(seconds=2.0, seed=3)
    noise = (0.05 * clean + 0.01 * np.random.default_rng(4).standard_normal(clean.shape)).astype(np.float32)
    expected = loudness_neutral(noise, clean, RATE_HZ)
    written = loudness_neutral(noise, clean, RATE_HZ, out=noise)
    assert written is noise and np.array_equal(written, expected)
