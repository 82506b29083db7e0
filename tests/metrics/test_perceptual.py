"""Perceptual metrics against values worked out by hand, by formula, or by property."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.metrics.perceptual import (
    clipped_sample_count,
    loudness_change_lu,
    noise_energy_share_by_region,
    noise_to_mask_ratio_stats_db,
    snr_db,
    visqol_mos,
)

EXAMPLE_SONG = Path(__file__).resolve().parents[2] / "examples" / "elf-land.ogg"


def sine(amplitude, frequency_hz, sample_rate_hz, seconds):
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    return amplitude * np.sin(2 * np.pi * frequency_hz * t)


@pytest.fixture(scope="module")
def music():
    """3 s of real music, stereo (channels, time), 44.1 kHz."""
    samples, sample_rate_hz = sf.read(EXAMPLE_SONG, dtype="float32", start=8 * 44100, frames=3 * 44100)
    return samples.T.copy(), sample_rate_hz


def white_noise_at_snr(music_samples, snr_db_wanted, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(music_samples.shape)
    noise *= math.sqrt(np.mean(music_samples.astype(np.float64) ** 2) / np.mean(noise**2)) * 10 ** (-snr_db_wanted / 20)
    return music_samples + noise


# ----------------------------------------------------------------------------- SNR


def test_snr_of_a_known_added_sine_by_hand():
    original = sine(0.5, 440.0, 16000, 1.0)  # whole periods: mean square = A^2 / 2
    protected = original + sine(0.05, 1000.0, 16000, 1.0)
    # (0.5^2 / 2) / (0.05^2 / 2) = 100 -> 20 dB
    assert snr_db(original, protected) == pytest.approx(20.0, abs=1e-9)


def test_snr_edge_cases():
    x = sine(0.5, 440.0, 16000, 0.5)
    assert snr_db(x, x) == math.inf
    assert snr_db(np.zeros(100), np.full(100, 0.1)) == -math.inf
    assert math.isnan(snr_db(np.zeros(0), np.zeros(0)))


def test_mismatched_signals_raise_the_root_error():
    with pytest.raises(HarmonyCloakError):
        snr_db(np.zeros((2, 100)), np.zeros((2, 99)))
    with pytest.raises(HarmonyCloakError):
        snr_db(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))


# ----------------------------------------------------------------------------- noise-to-mask ratio


def test_nmr_of_zero_noise(music):
    samples, sample_rate_hz = music
    stats = noise_to_mask_ratio_stats_db(samples, samples, sample_rate_hz)
    for key in ("mean_db", "median_db", "p95_db", "max_db", "band_mean_db", "band_p95_db", "band_max_db"):
        assert stats[key] == -math.inf
    assert stats["fraction_above_0db"] == 0.0 and stats["band_fraction_above_0db"] == 0.0
    assert stats["num_bins"] > 0 and stats["num_bands"] > 0


def test_nmr_of_a_sine_in_silence_by_hand():
    """In silence the threshold is the threshold in quiet, so the NMR of a sine is its level minus it."""
    sample_rate_hz, amplitude = 16000, 0.01
    noise = sine(amplitude, 1000.0, sample_rate_hz, 1.0)  # bin 32 of the default 512-point analysis
    stats = noise_to_mask_ratio_stats_db(np.zeros_like(noise), noise, sample_rate_hz)
    level_db = 96 + 20 * math.log10(amplitude)  # 56 dB SPL

    def quiet(f_hz):
        f = f_hz / 1000
        return 3.64 * f**-0.8 - 6.5 * math.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f**4

    assert stats["max_db"] == pytest.approx(level_db - quiet(1000.0), abs=1e-3)
    # Per band: the sine's power over its 3 bins divided by Hann's 1.5-bin noise bandwidth is
    # its own level; the band (8 to 9 Bark) holds bins 30..34 and its lowest threshold in
    # quiet is at its top bin.
    def bark(f_hz):
        return 13 * math.atan(0.00076 * f_hz) + 3.5 * math.atan((f_hz / 7500) ** 2)

    band_bins = [k for k in range(257) if 8 <= bark(k * 31.25) < 9]
    assert band_bins == [30, 31, 32, 33, 34]
    assert stats["band_max_db"] == pytest.approx(level_db - quiet(34 * 31.25), abs=1e-3)


def test_nmr_orders_white_noise_levels_and_straddles_zero(music):
    samples, sample_rate_hz = music
    quiet = noise_to_mask_ratio_stats_db(samples, white_noise_at_snr(samples, 60.0), sample_rate_hz)
    loud = noise_to_mask_ratio_stats_db(samples, white_noise_at_snr(samples, 20.0), sample_rate_hz)
    # docs/audibility.md: p95 about -18.5 dB at 60 dB SNR and +21.6 dB at 20 dB SNR on another song.
    assert quiet["p95_db"] < 0.0 < loud["p95_db"]
    assert quiet["fraction_above_0db"] < 0.05 < loud["fraction_above_0db"]
    assert quiet["median_db"] <= quiet["p95_db"] <= quiet["max_db"]
    # Broadband noise summed over a critical band is judged more audible than bin by bin.
    assert loud["band_p95_db"] > loud["p95_db"] and quiet["band_p95_db"] > quiet["p95_db"]


def test_nmr_shifts_by_the_gain_of_the_noise(music):
    """Doubling the noise raises every bin's NMR by 20 log10 2 = 6.02 dB (the threshold is the music's)."""
    samples, sample_rate_hz = music
    noise = white_noise_at_snr(samples, 40.0, seed=1) - samples
    once = noise_to_mask_ratio_stats_db(samples, samples + noise, sample_rate_hz)
    twice = noise_to_mask_ratio_stats_db(samples, samples + 2 * noise, sample_rate_hz)
    for key in ("mean_db", "median_db", "p95_db", "max_db", "band_mean_db", "band_median_db", "band_p95_db"):
        assert twice[key] - once[key] == pytest.approx(20 * math.log10(2), abs=0.01)


def test_nmr_counts_only_the_band(music):
    samples, sample_rate_hz = music
    noisy = white_noise_at_snr(samples[:, :44100], 30.0)
    narrow = noise_to_mask_ratio_stats_db(samples[:, :44100], noisy, sample_rate_hz, band_hz=(1000.0, 2000.0))
    bin_hz = np.arange(1025) * 44100 / 2048  # default analysis at 44.1 kHz: 2048 points, hop 512
    frames, bins_in_band = 1 + 44100 // 512, int(np.sum((bin_hz >= 1000) & (bin_hz <= 2000)))
    assert narrow["num_bins"] == 2 * frames * bins_in_band


# ----------------------------------------------------------------------------- loudness


def test_loudness_change_of_a_6_db_gain_is_6_lu(music):
    samples, sample_rate_hz = music
    quieter = 0.25 * samples  # headroom so the doubled version stays inside [-1, 1]
    # BS.1770 integrated loudness is -0.691 + 10 log10(sum of gated block powers): doubling
    # the amplitude multiplies every power by 4 and keeps the same blocks, so +20 log10 2.
    assert loudness_change_lu(quieter, 2 * quieter, sample_rate_hz) == pytest.approx(20 * math.log10(2), abs=1e-6)
    assert loudness_change_lu(samples, samples, sample_rate_hz) == 0.0


def test_loudness_change_is_nan_for_clips_shorter_than_400_ms():
    x = sine(0.3, 440.0, 16000, 0.39)
    assert math.isnan(loudness_change_lu(x, 2 * x, 16000))
    assert math.isnan(loudness_change_lu(np.zeros(16000), np.zeros(16000), 16000))


# ----------------------------------------------------------------------------- clipping


def test_clipped_sample_count_by_hand():
    samples = np.array([[0.0, 0.5, 1.0, -1.2, 0.99], [-1.0, 0.2, 0.3, 0.4, 2.0]])
    assert clipped_sample_count(samples) == 4  # 1.0, -1.2, -1.0, 2.0
    assert clipped_sample_count(samples, threshold=0.99) == 5
    assert clipped_sample_count(np.zeros(10)) == 0


# ----------------------------------------------------------------------------- ViSQOL


def test_visqol_identical_is_near_its_top_and_white_noise_scores_clearly_lower(music):
    samples, sample_rate_hz = music
    identical = visqol_mos(samples, samples, sample_rate_hz, max_seconds=2.0)
    noisy = visqol_mos(samples, white_noise_at_snr(samples, 20.0), sample_rate_hz, max_seconds=2.0)
    # docs/audibility.md: identical about 4.73, white noise at 20 dB SNR about 1.3.
    assert identical == pytest.approx(4.73, abs=0.05)
    assert noisy < 2.5


def test_visqol_is_nan_for_audio_shorter_than_a_second():
    x = sine(0.3, 440.0, 48000, 0.5)
    assert math.isnan(visqol_mos(x, x, 48000))


# ----------------------------------------------------------------------------- where the noise lies


def test_energy_share_of_pure_tones_lands_in_their_region():
    original = sine(0.5, 440.0, 44100, 1.0)
    low = noise_energy_share_by_region(original, original + sine(0.01, 30.0, 44100, 1.0), 44100)
    assert low["low"] == pytest.approx(1.0, abs=1e-6)
    mid = noise_energy_share_by_region(original, original + sine(0.01, 1000.0, 44100, 1.0), 44100)
    assert mid["mid"] == pytest.approx(1.0, abs=1e-6)
    high = noise_energy_share_by_region(original, original + sine(0.01, 16000.0, 44100, 1.0), 44100)
    assert high["high"] == pytest.approx(1.0, abs=1e-6)


def test_energy_share_splits_by_energy_and_sums_to_one():
    original = np.zeros((2, 16000))
    noise = np.stack([sine(0.3, 30.0, 16000, 1.0), sine(0.1, 1000.0, 16000, 1.0)])  # energies 9 : 1
    shares = noise_energy_share_by_region(original, noise, 16000)
    assert shares["low"] == pytest.approx(0.9, abs=1e-6)
    assert shares["mid"] == pytest.approx(0.1, abs=1e-6)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(math.isnan(v) for v in noise_energy_share_by_region(original, original, 16000).values())
