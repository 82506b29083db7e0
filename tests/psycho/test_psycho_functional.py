"""The psychoacoustic model's pure functions against values worked out by hand from the formulas."""

from __future__ import annotations

import math

import pytest
import torch

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.psycho import functional as PF

# ----------------------------------------------------------------------------- scales and levels


def terhardt_by_hand(frequency_hz: float) -> float:
    f = max(frequency_hz, 20.0) / 1000.0
    return 3.64 * f**-0.8 - 6.5 * math.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f**4


def test_threshold_in_quiet_at_1_khz_by_hand():
    expected = 3.64 - 6.5 * math.exp(-0.6 * 5.29) + 0.001  # f = 1 kHz: 1^-0.8 = 1, (1 - 3.3)^2 = 5.29
    assert expected == pytest.approx(3.3691, abs=1e-4)
    assert float(PF.absolute_threshold_db_spl(1000.0)) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("frequency_hz", [50.0, 440.0, 3300.0, 4000.0, 12000.0, 16000.0])
def test_threshold_in_quiet_matches_terhardt_formula(frequency_hz):
    assert float(PF.absolute_threshold_db_spl(frequency_hz)) == pytest.approx(terhardt_by_hand(frequency_hz), abs=1e-9)


def test_threshold_in_quiet_has_its_dip_near_3_3_khz_and_rises_steeply_at_high_frequencies():
    frequency_hz = torch.linspace(20.0, 20000.0, 20000, dtype=torch.float64)
    threshold = PF.absolute_threshold_db_spl(frequency_hz)
    assert 3000.0 < float(frequency_hz[threshold.argmin()]) < 3700.0
    assert float(threshold.min()) < -4.0  # about -5 dB SPL at its most sensitive
    # The 1e-3 f^4 term the paper leaves out: at 16 kHz it alone is 65.5 dB.
    assert float(PF.absolute_threshold_db_spl(16000.0)) > 60.0


def test_threshold_in_quiet_below_20_hz_is_clamped_to_20_hz():
    at_20 = terhardt_by_hand(20.0)
    values = PF.absolute_threshold_db_spl(torch.tensor([0.0, 5.0, 19.9, 20.0], dtype=torch.float64))
    assert torch.allclose(values, torch.full((4,), at_20, dtype=torch.float64))
    assert torch.isfinite(values).all()


def test_bark_by_hand_and_against_zwickers_critical_band_table():
    for frequency_hz in [0.0, 100.0, 1000.0, 4000.0, 10000.0]:
        by_hand = 13 * math.atan(0.00076 * frequency_hz) + 3.5 * math.atan((frequency_hz / 7500) ** 2)
        assert float(PF.hz_to_bark(frequency_hz)) == pytest.approx(by_hand, abs=1e-9)
    # Zwicker's table of critical-band edges (Zwicker & Fastl): edge of band n at n Bark.
    for edge_hz, bark in [(100, 1), (510, 5), (1080, 9), (2000, 13), (4400, 18), (9500, 22), (15500, 24)]:
        assert float(PF.hz_to_bark(float(edge_hz))) == pytest.approx(bark, abs=0.3)


def test_amplitude_and_level_conversions():
    assert float(PF.amplitude_to_db_spl(1.0)) == pytest.approx(96.0)
    assert float(PF.amplitude_to_db_spl(0.1)) == pytest.approx(76.0)
    assert float(PF.amplitude_to_db_spl(0.5, full_scale_db_spl=100.0)) == pytest.approx(100 + 20 * math.log10(0.5))
    assert float(PF.amplitude_to_db_spl(0.0)) == pytest.approx(96.0 - 200.0)  # the 1e-10 floor
    assert float(PF.amplitude_to_db_spl(0.0, amplitude_floor=0.0)) == -math.inf
    assert float(PF.db_spl_to_amplitude(76.0)) == pytest.approx(0.1)
    assert float(PF.db_spl_to_amplitude(PF.amplitude_to_db_spl(0.37))) == pytest.approx(0.37)


# ----------------------------------------------------------------------------- spectrum and calibration


def sine(amplitude: float, frequency_hz: float, sample_rate_hz: int, num_samples: int, dtype=torch.float64):
    t = torch.arange(num_samples, dtype=dtype) / sample_rate_hz
    return amplitude * torch.cos(2 * math.pi * frequency_hz * t)


@pytest.mark.parametrize("amplitude, expected_db", [(1.0, 96.0), (0.5, 96.0 - 20 * math.log10(2.0)), (0.01, 56.0)])
def test_sine_at_a_bin_centre_reads_its_calibrated_level(amplitude, expected_db):
    sample_rate_hz, n_fft, hop = 16000, 512, 128
    x = sine(amplitude, 40 * sample_rate_hz / n_fft, sample_rate_hz, 8000)
    spectrum = PF.spectrum_db_spl(x, n_fft, hop)
    middle = spectrum[10:-10]  # frames whose window lies inside the signal
    assert torch.all(middle.argmax(-1) == 40)
    assert torch.allclose(middle[:, 40], torch.full_like(middle[:, 40], expected_db), atol=1e-6)


def test_stft_amplitude_scale_is_two_over_the_window_sum():
    assert PF.stft_amplitude_scale(512) == pytest.approx(2.0 / 256.0)  # periodic Hann sums to n_fft / 2
    x = sine(0.3, 25 * 16000 / 256, 16000, 4000)
    coefficients = PF.stft(x, 256, 64)
    assert float(coefficients[20, 25].abs()) * PF.stft_amplitude_scale(256) == pytest.approx(0.3, rel=1e-9)


def test_stft_frame_count_centring_and_round_trip():
    x = torch.randn(2, 1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    coefficients = PF.stft(x, 256, 64)
    assert coefficients.shape == (2, 1 + 1000 // 64, 129)
    # Frame j is centred on sample j * hop: an impulse at sample 640 is centred in frame 10.
    impulse = torch.zeros(1000, dtype=torch.float64)
    impulse[640] = 1.0
    assert int(PF.stft(impulse, 256, 64).abs().sum(-1).argmax()) == 10
    assert torch.allclose(PF.istft(coefficients, 256, 64, 1000), x, atol=1e-10)


def test_spectrum_is_differentiable_with_finite_gradients_even_at_silence():
    x = torch.randn(2, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    assert torch.autograd.gradcheck(lambda w: PF.spectrum_db_spl(w, 16, 4), (x,))
    silence = torch.zeros(64, dtype=torch.float32, requires_grad=True)
    PF.spectrum_db_spl(silence, 16, 4).sum().backward()
    assert torch.isfinite(silence.grad).all()


def test_spectrum_keeps_leading_dimensions():
    x = torch.zeros(2, 3, 1600)
    assert PF.spectrum_db_spl(x, 256, 160).shape == (2, 3, 11, 129)


# ----------------------------------------------------------------------------- frequency masking


def tone_threshold(amplitude=0.5, bin_index=64, sample_rate_hz=16000, n_fft=512, dtype=torch.float64):
    x = sine(amplitude, bin_index * sample_rate_hz / n_fft, sample_rate_hz, sample_rate_hz, dtype)
    spectrum = PF.spectrum_db_spl(x, n_fft, n_fft // 4)
    return PF.frequency_masking_threshold_db_spl(spectrum, sample_rate_hz, n_fft)[20]  # one frame inside


def test_pure_tone_masks_most_at_its_own_frequency():
    sample_rate_hz, n_fft, k0 = 16000, 512, 64  # 2 kHz
    threshold = tone_threshold(0.5, k0, sample_rate_hz, n_fft)
    frequency_hz = PF.bin_frequencies_hz(sample_rate_hz, n_fft, dtype=torch.float64)
    audible = frequency_hz >= 100.0  # the threshold in quiet alone is high near DC
    peak = int(torch.nonzero(audible)[0]) + int(threshold[audible].argmax())
    assert abs(peak - k0) <= 1
    quiet = PF.absolute_threshold_db_spl(frequency_hz)
    assert float(threshold[k0] - quiet[k0]) > 60.0  # far above the threshold in quiet


def test_pure_tone_threshold_follows_the_spreading_slopes():
    sample_rate_hz, n_fft, k0, amplitude = 16000, 512, 64, 0.5
    threshold = tone_threshold(amplitude, k0, sample_rate_hz, n_fft)
    bark = PF.hz_to_bark(PF.bin_frequencies_hz(sample_rate_hz, n_fft, dtype=torch.float64))
    # By hand: Hann at a bin centre puts the peak at A and both neighbours at A/2, so the
    # tonal masker's level (power sum of 3 bins) is the peak level + 10 log10(1.5).
    masker_db = 96 + 20 * math.log10(amplitude) + 10 * math.log10(1.5)
    z0 = float(bark[k0])
    peak_db = masker_db - 6.025 - 0.275 * z0
    assert float(threshold[k0]) == pytest.approx(peak_db, abs=0.05)
    lower_slope, upper_slope = 27.0, 27.0 - 0.37 * (masker_db - 40.0)  # dB per Bark
    for k in [k0 - 12, k0 - 6, k0 + 6, k0 + 20, k0 + 40]:
        dz = float(bark[k]) - z0
        expected = peak_db - (lower_slope * -dz if dz < 0 else upper_slope * dz)
        assert float(threshold[k]) == pytest.approx(expected, abs=0.2), k
    # Falls on both sides, faster below the tone than above it.
    assert torch.all(torch.diff(threshold[k0 - 15 : k0 + 1]) > 0)
    assert torch.all(torch.diff(threshold[k0 : k0 + 40]) < 0)
    one_bark_below = int(torch.argmin((bark - (z0 - 1)).abs()))
    one_bark_above = int(torch.argmin((bark - (z0 + 1)).abs()))
    assert threshold[k0] - threshold[one_bark_below] > threshold[k0] - threshold[one_bark_above]


def test_silence_gives_exactly_the_threshold_in_quiet():
    sample_rate_hz, n_fft = 44100, 2048
    spectrum = PF.spectrum_db_spl(torch.zeros(2, 8000), n_fft, 512)
    threshold = PF.frequency_masking_threshold_db_spl(spectrum, sample_rate_hz, n_fft)
    quiet = PF.absolute_threshold_db_spl(PF.bin_frequencies_hz(sample_rate_hz, n_fft))
    assert torch.equal(threshold, quiet.expand_as(threshold))


def test_batched_threshold_equals_item_by_item():
    generator = torch.Generator().manual_seed(3)
    x = 0.3 * torch.randn(2, 3, 4000, generator=generator) * torch.linspace(0, 1, 4000) ** 2
    x[0, 1] += sine(0.4, 700.0, 16000, 4000, torch.float32)
    batched = PF.masking_threshold_db_spl(x, 16000, 512, 128)
    for i in range(2):
        for j in range(3):
            single = PF.masking_threshold_db_spl(x[i, j], 16000, 512, 128)
            assert torch.allclose(batched[i, j], single, atol=1e-4)


def test_threshold_never_falls_below_the_threshold_in_quiet_and_has_no_gradient():
    x = 0.2 * torch.randn(3000, generator=torch.Generator().manual_seed(4), requires_grad=True)
    threshold = PF.masking_threshold_db_spl(x, 16000, 512, 128)
    quiet = PF.absolute_threshold_db_spl(PF.bin_frequencies_hz(16000, 512))
    assert torch.all(threshold >= quiet - 1e-4)
    assert not threshold.requires_grad


def test_wrong_number_of_bins_is_a_settings_error():
    with pytest.raises(HarmonyCloakError):
        PF.frequency_masking_threshold_db_spl(torch.zeros(4, 100), 16000, 512)


# ----------------------------------------------------------------------------- temporal masking


def test_temporal_masking_spreads_a_loud_frame_linearly_towards_the_quiet_threshold():
    hop_ms, frames, loud_frame = 10.0, 40, 10
    threshold = torch.zeros(frames, 3, dtype=torch.float64)
    threshold[loud_frame] = 80.0  # 80 dB above a quiet threshold of 0 dB SPL
    spread = PF.temporal_masking_db_spl(threshold, hop_ms, pre_masking_ms=20.0, post_masking_ms=200.0)
    for frame in range(frames):
        n = frame - loud_frame
        if n == 0:
            expected = 80.0
        elif n > 0:
            expected = max(80.0 * (1 - n * hop_ms / 200.0), 0.0)  # 200 ms after: back to quiet
        else:
            expected = max(80.0 * (1 - -n * hop_ms / 20.0), 0.0)  # only 20 ms before
        assert float(spread[frame, 0]) == pytest.approx(expected, abs=1e-9), frame
    assert float(spread[loud_frame + 19, 0]) > 0 and float(spread[loud_frame + 20, 0]) == 0.0
    assert float(spread[loud_frame - 1, 0]) == pytest.approx(40.0) and float(spread[loud_frame - 2, 0]) == 0.0


def test_temporal_masking_takes_the_maximum_and_never_lowers_the_threshold():
    threshold = torch.rand(2, 30, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 60
    spread = PF.temporal_masking_db_spl(threshold, 8.0, quiet_threshold_db=torch.full((5,), 3.0, dtype=torch.float64))
    assert torch.all(spread >= threshold)
    # A frame's masker reaches the next frame (8 ms later) with 96 % of its excess over 3 dB.
    expected_next = 3.0 + (threshold[:, :-1] - 3.0).clamp_min(0) * (1 - 8.0 / 200.0)
    assert torch.all(spread[:, 1:] >= expected_next - 1e-12)


def test_a_loud_burst_raises_the_threshold_after_it_for_about_the_post_masking_time():
    sample_rate_hz, n_fft, hop = 16000, 512, 128  # 8 ms hop
    x = torch.zeros(sample_rate_hz)
    burst = slice(8000, 8000 + 480)  # 30 ms of a loud 1 kHz tone in silence
    x[burst] = sine(0.8, 1000.0, sample_rate_hz, 480, torch.float32)
    k = 32  # 1 kHz
    with_temporal = PF.masking_threshold_db_spl(x, sample_rate_hz, n_fft, hop)[:, k]
    without = PF.masking_threshold_db_spl(x, sample_rate_hz, n_fft, hop, temporal=False)[:, k]
    quiet = float(PF.absolute_threshold_db_spl(1000.0))
    last_loud_frame = int(torch.nonzero(without > quiet + 1)[-1])
    first_loud_frame = int(torch.nonzero(without > quiet + 1)[0])
    raised = with_temporal > without + 1
    after = int(raised[last_loud_frame + 1 :].sum()) * 8.0  # ms raised after the burst
    before = int(raised[:first_loud_frame].sum()) * 8.0
    assert 150.0 <= after <= 200.0
    assert 0.0 < before <= 20.0


# ----------------------------------------------------------------------------- DLS velocity (Eq. 6)


def test_dls_velocity_hand_values():
    assert float(PF.db_spl_to_velocity(60.0, 100.0)) == pytest.approx(12.7)  # -40 dB: 127 * 10^-1
    assert float(PF.db_spl_to_velocity(100.0, 100.0)) == pytest.approx(127.0)
    assert float(PF.db_spl_to_velocity(90.0, 100.0)) == pytest.approx(127 * 10 ** (-10 / 40))
    assert float(PF.velocity_to_db_spl(1.0, 100.0)) == pytest.approx(100 + 40 * math.log10(1 / 127))
    assert float(PF.velocity_to_db_spl(63.5, 80.0)) == pytest.approx(80 - 40 * math.log10(2))  # half velocity: -12 dB
    assert float(PF.velocity_to_db_spl(0.0, 80.0)) == -math.inf


def test_dls_velocity_round_trip_and_clamping():
    velocity = torch.tensor([1.0, 12.7, 64.0, 100.0, 127.0], dtype=torch.float64)
    level = PF.velocity_to_db_spl(velocity, 90.0)
    assert torch.allclose(PF.db_spl_to_velocity(level, 90.0), velocity)
    assert float(PF.db_spl_to_velocity(120.0, 90.0)) == 127.0  # louder than velocity 127 can play
    assert float(PF.db_spl_to_velocity(-1000.0, 90.0)) == pytest.approx(0.0)
    assert float(PF.db_spl_to_velocity(-math.inf, 90.0)) == 0.0


# ----------------------------------------------------------------------------- masker steps by hand


def test_tonal_neighbourhood_is_the_standards_table_at_its_own_resolution():
    # Layer II table for a 1024-point FFT at 44.1 kHz: Δk = 2 (k < 63), 3 (< 127), 6 (< 255), 12.
    frequency_hz = PF.bin_frequencies_hz(44100, 1024, dtype=torch.float64)
    half_width = PF.tonal_neighbourhood_bins(frequency_hz, 44100 / 1024)
    assert [int(half_width[k]) for k in (10, 62, 63, 126, 127, 254, 255, 500)] == [2, 2, 3, 3, 6, 6, 12, 12]
    # At a coarser resolution (86 Hz bins) 2 bins at the reference would be 1: never below 2.
    coarse = PF.tonal_neighbourhood_bins(PF.bin_frequencies_hz(44100, 512, dtype=torch.float64), 44100 / 512)
    assert int(coarse[5]) == 2 and int(coarse[200]) == 6


@pytest.mark.parametrize("n_fft", [512, 2048])
def test_a_tonal_bin_s_neighbourhood_by_pooling_is_the_one_of_its_definition_bin_for_bin(n_fft):
    # the definition, read one offset at a time: max of P[k ± j] over 2 <= j <= Δk (+inf past either
    # end), and the bins within Δk of a tonal bin k
    frequency_hz = PF.bin_frequencies_hz(44100, n_fft, dtype=torch.float64)
    half_width = PF.tonal_neighbourhood_bins(frequency_hz, 44100 / n_fft).tolist()
    num_bins = len(half_width)
    spectrum = 20.0 * torch.randn(3, num_bins, generator=torch.Generator().manual_seed(n_fft), dtype=torch.float64)
    spectrum[0, 7], spectrum[1, :40], spectrum[2, -3] = math.inf, -math.inf, -math.inf
    is_tonal = torch.rand(3, num_bins, generator=torch.Generator().manual_seed(1)) < 0.02
    for side in (-1, 1):
        expected = torch.full_like(spectrum, -math.inf)
        for k in range(num_bins):
            for j in range(2, half_width[k] + 1):
                neighbour = k + side * j
                value = spectrum[:, neighbour] if 0 <= neighbour < num_bins else torch.full((3,), math.inf)
                expected[:, k] = torch.maximum(expected[:, k], value.to(torch.float64))
        neighbourhood = torch.tensor(half_width)
        assert torch.equal(PF._neighbourhood_max(spectrum, neighbourhood, side), expected)
    near = torch.zeros_like(is_tonal)
    for row, k in is_tonal.nonzero().tolist():
        near[row, max(k - half_width[k], 0) : k + half_width[k] + 1] = True
    assert torch.equal(PF._within_neighbourhood(is_tonal, torch.tensor(half_width)), near)


def test_find_maskers_by_hand():
    sample_rate_hz, n_fft = 44100, 1024
    frequency_hz = PF.bin_frequencies_hz(sample_rate_hz, n_fft, dtype=torch.float64)
    bark = PF.hz_to_bark(frequency_hz)
    spectrum = torch.full((513,), 30.0, dtype=torch.float64)
    spectrum[49:52] = torch.tensor([74.0, 80.0, 74.0])  # a tone at bin 50
    spectrum[100:102] = 70.0  # a plateau: the lower bin is the peak
    spectrum[200], spectrum[202] = 40.0, 36.0  # only 4 dB above a neighbour 2 bins away: not tonal
    tonal_db, noise_db = PF.find_maskers(spectrum, frequency_hz, bark)
    tonal_bins = torch.nonzero(tonal_db > -math.inf).flatten().tolist()
    assert tonal_bins == [50, 100]
    assert float(tonal_db[50]) == pytest.approx(10 * math.log10(10**8.0 + 2 * 10**7.4))
    assert float(tonal_db[100]) == pytest.approx(10 * math.log10(10**3.0 + 2 * 10**7.0))
    # The noise masker of the band holding bin 50: every other bin of the band (bins 48..52,
    # the tone's ±2-bin neighbourhood, are left out), each at 30 dB, at the geometric-mean bin.
    band = [k for k in range(1, 513) if math.floor(float(bark[k])) == math.floor(float(bark[50]))]
    kept = [k for k in band if abs(k - 50) > 2]
    centre = round(math.exp(sum(math.log(k) for k in band) / len(band)))
    assert float(noise_db[centre]) == pytest.approx(30.0 + 10 * math.log10(len(kept)))
    assert int((noise_db > -math.inf).sum()) == math.floor(float(bark[-1])) + 1  # one per band
