import numpy as np
import pytest

from harmonycloak.cloak import band_check
from harmonycloak.cloak.band_check import held_to_band_check
from harmonycloak.metrics.perceptual import noise_to_mask_ratio_stats_db

RATE = 44_100
LIMIT_DB = -3.0


def music(seconds: float = 3.0) -> np.ndarray:
    """A 1 kHz tone over hiss 40 dB quieter, two channels (2, N) float32."""
    time = np.arange(round(seconds * RATE)) / RATE
    hiss = np.random.default_rng(0).standard_normal((2, time.size))
    return (0.3 * np.sin(2 * np.pi * 1000 * time) + 0.003 * hiss).astype(np.float32)


def quiet_noise(length: int) -> np.ndarray:
    return (1e-4 * np.random.default_rng(1).standard_normal((2, length))).astype(np.float32)


def with_clicks(noise: np.ndarray, first_s: float, last_s: float) -> np.ndarray:
    """Clicks every 10 ms in [first_s, last_s): noise gathered into pulses, as an optimiser can."""
    loud = noise.copy()
    loud[:, round(first_s * RATE) : round(last_s * RATE) : RATE // 100] += 0.05
    return loud


def band_stats(clean: np.ndarray, noise: np.ndarray) -> dict:
    return noise_to_mask_ratio_stats_db(clean, clean + noise, RATE)


def test_noise_the_band_check_passes_is_left_bit_for_bit():
    clean = music()
    noise = quiet_noise(clean.shape[-1])
    assert band_stats(clean, noise)["band_max_db"] < LIMIT_DB  # the check passes it everywhere
    assert np.array_equal(held_to_band_check(noise, clean, RATE, LIMIT_DB), noise)


def test_clicks_over_the_limit_are_turned_down_under_it_and_the_rest_is_left():
    clean = music()
    noise = with_clicks(quiet_noise(clean.shape[-1]), 1.0, 1.5)
    before = band_stats(clean, noise)
    assert before["band_p95_db"] > 10.0  # the clicks are plainly audible
    held = held_to_band_check(noise, clean, RATE, LIMIT_DB)
    after = band_stats(clean, held)
    assert after["band_p95_db"] <= LIMIT_DB
    assert before["band_max_db"] > 10.0 and after["band_max_db"] < LIMIT_DB + 0.5  # every band of every frame
    # far from the clicks (more than an analysis window away) the noise is the same, up to resynthesis
    away = np.r_[: round(0.9 * RATE), round(1.6 * RATE) : clean.shape[-1]]
    np.testing.assert_allclose(held[:, away], noise[:, away], rtol=0, atol=1e-6)
    assert np.sum(held**2) < np.sum(noise**2)  # turned down, never up


def test_pieces_that_cut_through_the_clicks_hold_them_as_well(monkeypatch):
    clean = music()
    noise = with_clicks(quiet_noise(clean.shape[-1]), 0.8, 1.6)
    monkeypatch.setattr(band_check, "PIECE_S", 0.5)  # piece edges at 1.0 and 1.5 s, inside the clicks
    held = held_to_band_check(noise, clean, RATE, LIMIT_DB)
    assert band_stats(clean, held)["band_p95_db"] <= LIMIT_DB


def test_the_held_noise_is_written_into_out_when_given():
    clean = music(1.0)
    noise = with_clicks(quiet_noise(clean.shape[-1]), 0.3, 0.6)
    expected = held_to_band_check(noise, clean, RATE, LIMIT_DB)
    out = noise.copy()
    assert held_to_band_check(out, clean, RATE, LIMIT_DB, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(("strength", "bound_rule", "cloak", "limit"), [
    ("medium", "band", "masked", LIMIT_DB), ("low", "band-pool", None, LIMIT_DB), ("high", "band", "masked", None),
    ("medium", "bin", "masked", None), ("medium", "band", "dominant", None), ("medium", "band-pool", "masked-gain", LIMIT_DB),
    ("medium", "band-pool", "gain", None)])
def test_the_band_rules_at_low_and_medium_strength_are_held_to_the_check(strength, bound_rule, cloak, limit):
    from harmonycloak.settings import ProtectionSettings

    rule = {} if cloak in ("dominant", "gain") else {"bound_rule": bound_rule}
    assert ProtectionSettings(strength=strength, cloak=cloak, **rule).band_check_db == limit
