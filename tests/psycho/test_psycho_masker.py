"""`PsychoacousticModel`: defaults per sample rate, buffers, and agreement with the functions it wraps."""

from __future__ import annotations

import math

import pytest
import torch

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.psycho import PsychoacousticModel
from harmonycloak.psycho import functional as PF


@pytest.mark.parametrize(
    "sample_rate_hz, n_fft", [(8000, 256), (16000, 512), (22050, 1024), (44100, 2048), (48000, 2048)]
)
def test_default_window_is_the_smallest_power_of_two_of_at_least_32_ms(sample_rate_hz, n_fft):
    model = PsychoacousticModel(sample_rate_hz)
    assert model.n_fft == n_fft
    assert model.n_fft >= 0.032 * sample_rate_hz > model.n_fft / 2
    assert model.hop_length == n_fft // 4
    assert 7.5 <= model.hop_ms <= 12.0


def test_hop_ms_and_buffers():
    model = PsychoacousticModel(16000, hop_ms=10.0)
    assert model.hop_length == 160
    assert model.frequency_hz.shape == (257,)
    assert float(model.frequency_hz[1]) == pytest.approx(16000 / 512)
    bark_at_8_khz = 13 * math.atan(0.00076 * 8000) + 3.5 * math.atan((8000 / 7500) ** 2)
    assert float(model.bark[-1]) == pytest.approx(bark_at_8_khz, abs=1e-4)
    f_khz = 2.0
    assert float(model.quiet_threshold_db[64]) == pytest.approx(
        3.64 * f_khz**-0.8 - 6.5 * math.exp(-0.6 * (f_khz - 3.3) ** 2) + 1e-3 * f_khz**4, abs=1e-4
    )
    assert model.stft_amplitude_scale == pytest.approx(4 / 512)
    assert model.num_frames(16000) == 101


def test_module_calls_agree_with_the_functions():
    model = PsychoacousticModel(16000, full_scale_db_spl=100.0, post_masking_ms=100.0)
    x = 0.3 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.spectrum_db(x), PF.spectrum_db_spl(x, 512, 128, full_scale_db_spl=100.0))
    expected = PF.masking_threshold_db_spl(x, 16000, 512, 128, full_scale_db_spl=100.0, post_masking_ms=100.0)
    assert torch.equal(model.masking_threshold_db(x), expected)
    assert torch.equal(model(x), expected)
    assert torch.allclose(model.istft(model.stft(x), 4000), x, atol=1e-5)


def test_full_scale_setting_moves_the_whole_spectrum():
    x = 0.2 * torch.randn(3000, generator=torch.Generator().manual_seed(1))
    at_96 = PsychoacousticModel(16000).spectrum_db(x)
    at_90 = PsychoacousticModel(16000, full_scale_db_spl=90.0).spectrum_db(x)
    assert torch.allclose(at_96 - at_90, torch.full_like(at_96, 6.0), atol=1e-4)


def test_temporal_flag_switches_temporal_masking_off():
    x = torch.zeros(16000)
    x[4000:4400] = 0.8
    with_temporal = PsychoacousticModel(16000).masking_threshold_db(x)
    without = PsychoacousticModel(16000, temporal=False).masking_threshold_db(x)
    assert torch.all(with_temporal >= without - 1e-4)
    assert float((with_temporal - without).max()) > 20.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate_hz": 0},
        {"sample_rate_hz": 16000, "window_ms": 0.0},
        {"sample_rate_hz": 16000, "hop_ms": 40.0},  # hop beyond half the window
        {"sample_rate_hz": 16000, "post_masking_ms": -1.0},
    ],
)
def test_bad_settings_raise_the_root_error(kwargs):
    with pytest.raises(HarmonyCloakError):
        PsychoacousticModel(**kwargs)
