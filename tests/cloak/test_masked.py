import math

import numpy as np
import pytest
import torch

from harmonycloak.cloak.masked import (MaskedSpectrumCloak, MaskedSpectrumSettings, band_sum_correction_db,
                                      masking_threshold_in_chunks)
from harmonycloak.errors import SettingsError
from harmonycloak.metrics.perceptual import noise_to_mask_ratio_stats_db
from harmonycloak.psycho.functional import hz_to_bark, spectrum_db_spl
from harmonycloak.resampling import to_working_rate

RATE = 16_000


def music(seconds: float = 1.0) -> torch.Tensor:
    time = torch.arange(round(seconds * RATE)) / RATE
    return 0.3 * torch.sin(2 * math.pi * 440 * time) + 0.1 * torch.sin(2 * math.pi * 1_250 * time)


def test_coefficients_stay_under_their_bound_and_out_of_band_bins_stay_empty():
    cloak = MaskedSpectrumCloak(music()[None], RATE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cloak.coefficients.mul_(1e3)  # push every parameter far out
    spectrum = cloak.spectrum()
    assert torch.all(spectrum.abs() <= cloak.amplitude_bound * (1 + 1e-6))
    bin_hz = torch.arange(cloak.n_fft // 2 + 1) * RATE / cloak.n_fft
    assert torch.all(spectrum[..., bin_hz < 50].abs() == 0) and torch.all(spectrum[..., bin_hz > 7_200].abs() == 0)


def test_band_correction_is_ten_log_bins_per_bark():
    bin_hz = torch.tensor([1_000.0])
    width_bark = hz_to_bark(torch.tensor(1_015.625)) - hz_to_bark(torch.tensor(984.375))
    expected = 10 * math.log10(1 / width_bark.item())
    assert abs(band_sum_correction_db(bin_hz, 31.25).item() - expected) < 1e-4


@pytest.mark.parametrize("k", [40, 41])  # 1250 Hz and 1281.25 Hz: even and odd bins
def test_overlap_add_turns_a_held_coefficient_into_one_continuous_sine(k):
    cloak = MaskedSpectrumCloak(music()[None], RATE, generator=torch.Generator().manual_seed(0))
    amplitude, first_frame = 0.01, 7
    spectrum = torch.zeros(1, 1, 20, cloak.n_fft // 2 + 1, dtype=torch.complex64)
    spectrum[..., k] = amplitude
    waveform = cloak._overlap_add(spectrum, first_frame + torch.arange(20)[None])[0, 0]
    # the output starts at sample (first_frame − 1)·hop of the song
    n = (first_frame - 1) * cloak.hop_length + torch.arange(waveform.shape[-1])
    expected = amplitude * torch.cos(2 * math.pi * k * n / cloak.n_fft)
    inner = slice(2 * cloak.n_fft, -2 * cloak.n_fft)
    assert torch.allclose(waveform[inner], expected[inner], atol=1e-3 * amplitude)


def test_saturated_noise_stays_near_the_masking_threshold_when_measured_again():
    clean = music(2.0)
    cloak = MaskedSpectrumCloak(clean[None], RATE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cloak.coefficients.mul_(1e3)
        noise = cloak.noise(torch.tensor([0]), clean.shape[-1])[0]
    measured = spectrum_db_spl(noise, cloak.n_fft, cloak.hop_length)[0, 4:-4]
    threshold = threshold_db_spl(cloak, clean[None])[0, 4 : 4 + measured.shape[0]]
    # re-analysis leaks between neighbouring bins and frames; the band correction leaves room
    assert torch.quantile((measured - threshold).flatten(), 0.95) < 0.0


def test_the_noise_s_gradient_holds_the_frames_a_batch_read_with_the_values_of_the_dense_gradient(monkeypatch):
    from harmonycloak.cloak import masked

    cloak = MaskedSpectrumCloak(music(4.0)[None].repeat(2, 1), RATE, generator=torch.Generator().manual_seed(0))
    starts = torch.tensor([0, 8 * cloak.hop_length, 40 * cloak.hop_length])
    weights = torch.sin(0.01 * torch.arange(16 * cloak.hop_length))

    def gradient():
        return torch.autograd.grad((cloak.noise(starts, 16 * cloak.hop_length) * weights).sum(), [cloak.coefficients])[0]

    sparse = gradient()
    monkeypatch.setattr(masked._FramesRead, "apply", lambda coefficients, frames: coefficients[:, frames])
    dense = gradient()  # the plain index's gradient, the whole song's
    assert sparse.is_sparse and not dense.is_sparse
    read = set(sparse.coalesce().indices()[1].tolist())
    assert read == set(range(0, 25)) | set(range(40, 57))  # frames a … a + 16 of each segment, once each
    torch.testing.assert_close(sparse.to_dense(), dense, rtol=0, atol=1e-6)
    assert dense.abs().amax(dim=(0, 2, 3)).nonzero().flatten().tolist() == sorted(read)


def test_render_matches_length_and_keeps_the_noise_below_the_working_nyquist():
    cloak = MaskedSpectrumCloak(music()[None], RATE, generator=torch.Generator().manual_seed(0))
    rendered = cloak.render(44_100, 44_100)
    assert rendered.shape == (1, 44_100)
    power = torch.fft.rfft(torch.from_numpy(rendered[0]).double()).abs().square()  # 1 Hz bins
    assert power[8_000:].sum() < 1e-4 * power[:8_000].sum()


# --------------------------------------------------------------------------- the "band" bound rule

FULL_SCALE_DB_SPL = 96.0  # a full-scale sine is 96 dB SPL
HEADROOM_DB = 3.0


def sine_over_quiet_noise(rate: int, seconds: float = 2.0) -> np.ndarray:
    """A 440 Hz sine over white noise 40 dB quieter (N,) float32: one band masks far more than its neighbours."""
    time = np.arange(round(seconds * rate)) / rate
    hiss = np.random.default_rng(0).standard_normal(time.size)
    return (0.3 * np.sin(2 * math.pi * 440 * time) + 0.003 * hiss).astype(np.float32)


def bark(hz: np.ndarray) -> np.ndarray:
    """Zwicker & Terhardt's critical-band rate, written out here."""
    return 13 * np.arctan(0.00076 * hz) + 3.5 * np.arctan((hz / 7500) ** 2)


def threshold_db_spl(cloak: MaskedSpectrumCloak, lanes: torch.Tensor) -> torch.Tensor:
    """The masking threshold the cloak was built on (L, J, K) in dB SPL."""
    return masking_threshold_in_chunks(lanes, RATE, cloak.n_fft, cloak.hop_length, cloak.settings)


def band_power_excess_db(cloak: MaskedSpectrumCloak, lanes: torch.Tensor, margin_db: float) -> np.ndarray:
    """Per frame and integer-Bark band (1, J, bands): the power of every bin at its bound, summed
    over the band, minus (the band's lowest threshold − margin_db), both in dB SPL."""
    threshold_db = threshold_db_spl(cloak, lanes).numpy().astype(np.float64)
    bound = cloak.amplitude_bound.numpy().astype(np.float64)
    band = np.floor(bark(np.arange(bound.shape[-1]) * RATE / cloak.n_fft)).astype(int)
    excess = []
    for b in np.unique(band):
        members = band == b
        with np.errstate(divide="ignore"):
            power_db = FULL_SCALE_DB_SPL + 10 * np.log10(np.sum(bound[..., members] ** 2, axis=-1))
        excess.append(power_db - (threshold_db[..., members].min(-1) - margin_db))
    return np.stack(excess, axis=-1)


def test_the_band_rule_sums_each_bark_band_s_bounds_to_its_lowest_threshold_less_the_headroom():
    lanes = torch.from_numpy(sine_over_quiet_noise(RATE))[None]
    band = MaskedSpectrumCloak(lanes, RATE, MaskedSpectrumSettings(headroom_db=HEADROOM_DB, bound_rule="band"))
    excess_db = band_power_excess_db(band, lanes, HEADROOM_DB + band.settings.band_margin_db)
    assert excess_db.max() <= 1e-3  # float32 rounding
    assert excess_db.max() > -0.01  # and bands that nothing lowers further reach it
    # the bin rule, on the same signal, lets the sine's band hold far more than its valley masks
    per_bin = MaskedSpectrumCloak(lanes, RATE, MaskedSpectrumSettings(headroom_db=HEADROOM_DB, bound_rule="bin"))
    assert band_power_excess_db(per_bin, lanes, HEADROOM_DB).max() > 10.0


@pytest.mark.parametrize(("rule", "under_the_headroom"), [("band", True), ("band-pool", True), ("bin", False)])
def test_noise_at_the_band_rule_s_bound_reads_under_the_headroom_in_the_band_check(rule, under_the_headroom):
    """End to end: noise at its bound everywhere, rendered at 44.1 kHz, measured by verify's band NMR
    at 44.1 kHz (2048-point frames): its p95 stays under −headroom. Tolerance: none beyond the rule's
    own margin (measured −5.5 dB here)."""
    rate = 44_100
    clean = sine_over_quiet_noise(rate)[None]
    lanes = torch.from_numpy(to_working_rate(clean, rate, RATE))
    cloak = MaskedSpectrumCloak(lanes, RATE, MaskedSpectrumSettings(headroom_db=HEADROOM_DB, bound_rule=rule))
    with torch.no_grad():
        directions = torch.randn(cloak.coefficients.shape, generator=torch.Generator().manual_seed(1))
        cloak.coefficients.copy_(1e3 * directions)  # every coefficient at its bound, random phases
        noise = cloak.render(rate, clean.shape[-1])
    band_p95_db = noise_to_mask_ratio_stats_db(clean, clean + noise, rate)["band_p95_db"]
    assert (band_p95_db < -HEADROOM_DB) is under_the_headroom


def test_an_unknown_bound_rule_is_a_settings_error():
    with pytest.raises(SettingsError, match="bound rule"):
        MaskedSpectrumSettings(bound_rule="bark")


def spectrum_power_excess_db(cloak: MaskedSpectrumCloak, lanes: torch.Tensor, margin_db: float) -> np.ndarray:
    """As `band_power_excess_db`, for the noise the cloak makes now (`spectrum()`) instead of its bounds."""
    threshold_db = threshold_db_spl(cloak, lanes).numpy().astype(np.float64)
    with torch.no_grad():
        power = cloak.spectrum().abs().square().numpy().astype(np.float64)
    band = np.floor(bark(np.arange(power.shape[-1]) * RATE / cloak.n_fft)).astype(int)
    excess = []
    for b in np.unique(band):
        members = band == b
        with np.errstate(divide="ignore"):
            power_db = FULL_SCALE_DB_SPL + 10 * np.log10(np.sum(power[..., members], axis=-1))
        excess.append(power_db - (threshold_db[..., members].min(-1) - margin_db))
    return np.stack(excess, axis=-1)


def test_the_pooled_band_rule_lets_one_bin_take_its_band_s_whole_budget_and_never_more():
    lanes = torch.from_numpy(sine_over_quiet_noise(RATE))[None]
    settings = MaskedSpectrumSettings(headroom_db=HEADROOM_DB, bound_rule="band-pool")
    pooled = MaskedSpectrumCloak(lanes, RATE, settings)
    uniform = MaskedSpectrumCloak(lanes, RATE, MaskedSpectrumSettings(headroom_db=HEADROOM_DB, bound_rule="band"))
    margin_db = HEADROOM_DB + settings.band_margin_db
    with torch.no_grad():
        pooled.coefficients.copy_(1e3 * torch.randn(pooled.coefficients.shape, generator=torch.Generator().manual_seed(2)))
    excess_db = spectrum_power_excess_db(pooled, lanes, margin_db)  # every bin pushed to its cap: the bands are scaled back
    assert excess_db.max() <= 1e-3 and excess_db.max() > -0.01
    # one bin per band (its middle one) pushed, the others silent: that bin carries the band's budget,
    # more than the uniform rule's share wherever a band has several sounding bins away from its edges
    band = np.floor(bark(np.arange(pooled.coefficients.shape[2]) * RATE / pooled.n_fft)).astype(int)
    middles = [int(np.flatnonzero(band == b)[len(np.flatnonzero(band == b)) // 2]) for b in np.unique(band)]
    with torch.no_grad():
        pooled.coefficients.zero_()
        pooled.coefficients[:, :, middles, 0] = 1e3
        magnitude = pooled.spectrum().abs()
    assert spectrum_power_excess_db(pooled, lanes, margin_db).max() <= 1e-3
    wide = [k for k in middles if (band == band[k]).sum() >= 4 and bool((uniform.amplitude_bound[0, :, k] > 0).any())]
    ratio = magnitude[0, :, wide] / uniform.amplitude_bound[0, :, wide].clamp_min(1e-12)
    assert float(ratio.max()) > 1.9  # √4: a band of 4+ bins gives one bin at least twice the uniform amplitude
