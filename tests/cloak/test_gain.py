"""The gain cloak: level changes of the music itself, pinned by hand-written cases."""

import math

import numpy as np
import pytest
import torch

from harmonycloak.cloak.gain import GainModulationCloak, GainModulationSettings, mel_triangles
from harmonycloak.errors import SettingsError

RATE_HZ = 16_000


def test_the_band_triangles_sum_to_one_at_every_bin_and_peak_in_order():
    weights = mel_triangles(257, RATE_HZ, 16)
    assert torch.allclose(weights.sum(dim=0), torch.ones(257))
    assert (weights >= 0).all()
    peaks = weights.argmax(dim=1)
    assert torch.all(peaks[1:] > peaks[:-1])  # band b's weight peaks above band b − 1's


def test_a_uniform_gain_scales_the_music_by_ten_to_the_gain_over_twenty():
    music = 0.1 * torch.randn(2, RATE_HZ, generator=torch.Generator().manual_seed(0))
    cloak = GainModulationCloak(music, RATE_HZ, GainModulationSettings(level_neutral=False))
    with torch.no_grad():
        cloak.gains.fill_(math.atanh(0.5))  # 0.5 dB everywhere at the default ±1 dB
    starts = torch.tensor([0, 3 * cloak.hop_length])
    noise = cloak.noise(starts, 4096)
    for row, start in enumerate(starts.tolist()):
        expected = (10 ** (0.5 / 20) - 1) * music[:, start : start + 4096]
        assert torch.allclose(noise[row], expected, atol=1e-6)


def test_zero_gain_changes_nothing_and_no_gain_exceeds_the_bound():
    music = 0.1 * torch.randn(1, RATE_HZ // 2, generator=torch.Generator().manual_seed(1))
    cloak = GainModulationCloak(music, RATE_HZ, GainModulationSettings(max_gain_db=0.5))
    with torch.no_grad():
        cloak.gains.zero_()
    assert torch.allclose(cloak.noise(torch.tensor([0]), 4096), torch.zeros(1, 1, 4096), atol=1e-7)
    with torch.no_grad():
        cloak.gains.copy_(50 * torch.randn(cloak.gains.shape))
    assert cloak.gain_db().abs().max() <= 0.5 + 1e-6


def test_a_gain_in_the_lowest_band_leaves_a_high_tone_alone():
    time = torch.arange(RATE_HZ) / RATE_HZ
    low, high = torch.sin(2 * math.pi * 40 * time), torch.sin(2 * math.pi * 6000 * time)
    cloak = GainModulationCloak((0.1 * (low + high))[None], RATE_HZ, GainModulationSettings(level_neutral=False))
    with torch.no_grad():
        cloak.gains.zero_()
        cloak.gains[..., 0] = 10.0  # the lowest band at its bound, +1 dB
    noise = cloak.render(RATE_HZ, RATE_HZ)[0, 2000:14000] * np.hanning(12000)
    spectrum = np.abs(np.fft.rfft(noise))
    bin_hz = RATE_HZ / 12000
    at_40, at_6000 = spectrum[round(40 / bin_hz)], spectrum[round(6000 / bin_hz)]
    assert at_6000 < 1e-3 * at_40
    # the 40 Hz tone (every bin of its main lobe under the first band's centre) is lifted by the bound
    amplitude_40 = 2 * at_40 / np.hanning(12000).sum()
    assert amplitude_40 == pytest.approx((10 ** (1 / 20) - 1) * 0.1, rel=0.01)


def test_level_neutral_gains_turn_one_band_up_as_much_as_they_turn_the_other_down():
    time = torch.arange(RATE_HZ) / RATE_HZ
    low, high = torch.sin(2 * math.pi * 40 * time), torch.sin(2 * math.pi * 6000 * time)
    cloak = GainModulationCloak((0.1 * (low + high))[None], RATE_HZ)  # two tones of equal power
    with torch.no_grad():
        cloak.gains.zero_()
        cloak.gains[..., 0] = 10.0  # +1 dB asked of the lowest band only
    # the power-weighted mean of (+1 dB, 0 dB) over two equal tones is 0.5 dB: centred, +0.5 and −0.5
    noise = cloak.render(RATE_HZ, RATE_HZ)[0, 2000:14000] * np.hanning(12000)
    spectrum = np.abs(np.fft.rfft(noise)) * 2 / np.hanning(12000).sum()
    bin_hz = RATE_HZ / 12000
    assert spectrum[round(40 / bin_hz)] == pytest.approx((10 ** (0.5 / 20) - 1) * 0.1, rel=0.02)
    assert spectrum[round(6000 / bin_hz)] == pytest.approx((1 - 10 ** (-0.5 / 20)) * 0.1, rel=0.02)


def test_level_neutral_gains_keep_each_frame_s_mean_at_zero_and_the_bound():
    music = 0.1 * torch.randn(1, RATE_HZ // 2, generator=torch.Generator().manual_seed(2))
    cloak = GainModulationCloak(music, RATE_HZ)
    with torch.no_grad():
        cloak.gains.copy_(3 * torch.randn(cloak.gains.shape, generator=torch.Generator().manual_seed(3)))
        gain = cloak.gain_db()
        power = cloak.spectrum().abs().square()
    frame_mean = (gain * power).sum(-1) / power.sum(-1)
    assert frame_mean.abs().max() < 1e-5 and gain.abs().max() <= 1.0 + 1e-6
    assert gain.abs().amax(-1).min() > 0.3  # what is left is a change of balance, not nothing
    with torch.no_grad():
        cloak.gains.fill_(2.0)  # the same gain everywhere is a change of level alone: none is left
    assert torch.allclose(cloak.noise(torch.tensor([0]), 4096), torch.zeros(1, 1, 4096), atol=1e-6)


def test_the_gain_must_stay_within_six_db():
    with pytest.raises(SettingsError, match="gain"):
        GainModulationSettings(max_gain_db=10.0)


def test_a_frame_s_spectrum_is_read_from_its_own_samples_and_silence_counts_piece_by_piece(monkeypatch):
    from harmonycloak.cloak import gain

    music = 0.1 * torch.randn(2, RATE_HZ, generator=torch.Generator().manual_seed(4))
    music[1, : 20 * 256] = 0.0  # lane 1 silent over hops 0–19: its frames 0–19 have nothing to change
    cloak = GainModulationCloak(music, RATE_HZ)
    expected = torch.fft.rfft(torch.nn.functional.pad(music, (256, 0))[:, 5 * 256 : 5 * 256 + 512]
                              * torch.hann_window(512, periodic=True).sqrt())
    assert torch.allclose(cloak.spectrum(torch.tensor(5))[:, None], expected[:, None], atol=1e-5)  # hops 4–5
    assert torch.allclose(cloak.spectrum()[:, 5], expected, atol=1e-5)
    frames = cloak.num_frames  # ceil(16000 / 256) + 1 = 64
    assert frames == 64
    # the last frame spans samples 62·256 … 64·256: the song's last 128 samples, then zeros
    last = torch.fft.rfft(torch.nn.functional.pad(music[:, 62 * 256 :], (0, 384)) * torch.hann_window(512).sqrt())
    assert torch.allclose(cloak.spectrum()[:, -1], last, atol=1e-5)
    whole = cloak.active_share()
    # frame j reads samples (j − 1)·256 … (j + 1)·256: in lane 1 frames 0–19 read silence alone and
    # frame 20 meets the first sound at its window's middle, so 20 of the 2 × 64 cells are silent
    assert whole == pytest.approx(1 - 20 / (2 * frames))
    monkeypatch.setattr(gain, "ANALYSIS_FRAMES", 7)  # frames 0–6, 7–13, ... and a short last piece
    assert cloak.active_share() == whole
