"""Generation from the next-frame audio models and log-mel → waveform inversion."""

from __future__ import annotations

import math

import pytest
import torch

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import NextFrameConfig, NextFrameModel
from harmonycloak.models.audio_generation import generate, generate_waveform, mel_to_waveform
from harmonycloak.models.frontend import FrontendConfig, LogMelFrontend

CONFIG = FrontendConfig()


def swelling_mix(seed: int = 0) -> torch.Tensor:
    """1 s at 16 kHz: a 440 Hz tone, a 200 Hz → 1 kHz chirp and a little noise, swelling at 2 Hz."""
    rate = CONFIG.sample_rate_hz
    t = torch.arange(rate) / rate
    noise = torch.randn(rate, generator=torch.Generator().manual_seed(seed))
    tones = 0.3 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * (200 + 800 * t) * t) + 0.05 * noise
    return tones * (0.5 + 0.5 * torch.sin(2 * math.pi * 2 * t))


def magnitude(waveform: torch.Tensor, config: FrontendConfig) -> torch.Tensor:
    window = torch.hann_window(config.n_fft)
    return torch.stft(waveform, config.n_fft, config.hop_length, window=window, center=True, return_complex=True).abs()


# The three front ends of the audio surrogate bag (models/bag.py) and the largest mel and
# linear spectral convergences allowed for each (measured 0.05/0.14, 0.06/0.14, 0.14/0.32:
# Griffin-Lim converges less well over a 1024-point FFT at a 160-sample hop).
FRONT_ENDS = [(48, 400, 0.1, 0.3), (64, 512, 0.1, 0.3), (80, 1024, 0.2, 0.45)]


@pytest.mark.parametrize("n_mels, n_fft, mel_bound, linear_bound", FRONT_ENDS)
def test_inverted_mel_has_the_original_spectrogram(n_mels, n_fft, mel_bound, linear_bound):
    config = FrontendConfig(n_mels=n_mels, n_fft=n_fft)
    frontend = LogMelFrontend(config)
    original = swelling_mix()
    frames = frontend(original[None])  # (1, 101, n_mels)
    rebuilt = mel_to_waveform(frames, config, torch.Generator().manual_seed(1))
    assert rebuilt.shape == (1, (frames.shape[1] - 1) * config.hop_length)
    again = frontend(rebuilt)
    log_mel_error = (again - frames).abs().mean().item()  # front-end units: 1 unit = 2.5 decades of power
    mel_power, again_power = 10 ** (2.5 * frames), 10 ** (2.5 * again)  # monotone in band power
    mel_convergence = ((again_power.sqrt() - mel_power.sqrt()).norm() / mel_power.sqrt().norm()).item()
    reference, result = magnitude(original, config), magnitude(rebuilt[0], config)
    linear_convergence = ((result - reference).norm() / reference.norm()).item()
    print(
        f"inversion {n_mels} mels / {n_fft}-point FFT: mean |Δ log-mel| {log_mel_error:.4f} front-end units "
        f"({log_mel_error * 25:.2f} dB), mel spectral convergence {mel_convergence:.3f}, "
        f"linear spectral convergence {linear_convergence:.3f}"
    )
    assert log_mel_error < 0.04  # 1 dB mean band-level error (measured 0.010-0.021)
    assert mel_convergence < mel_bound
    assert linear_convergence < linear_bound
    # Control: another signal's spectrogram is far from this one, so the bounds can fail.
    other = frontend(torch.roll(original, 4000)[None])
    assert (other - frames).abs().mean().item() > 0.1


def test_inversion_is_deterministic_for_a_generator():
    frames = LogMelFrontend(CONFIG)(swelling_mix()[None, :8000])
    first = mel_to_waveform(frames, CONFIG, torch.Generator().manual_seed(5), griffin_lim_iterations=8)
    second = mel_to_waveform(frames, CONFIG, torch.Generator().manual_seed(5), griffin_lim_iterations=8)
    other = mel_to_waveform(frames, CONFIG, torch.Generator().manual_seed(6), griffin_lim_iterations=8)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    with pytest.raises(SettingsError):
        mel_to_waveform(frames[..., :10], CONFIG, torch.Generator())


@pytest.mark.parametrize("family", ["ar-transformer", "ar-gru", "ar-tcn"])
def test_greedy_generation_follows_the_models_own_predictions(family):
    torch.manual_seed(0)
    model = NextFrameModel(NextFrameConfig(family=family, width=16, layers=2, heads=2)).train()
    prompt = model.features(swelling_mix()[None, :1600].repeat(2, 1))  # (2, 11, 64)
    # 16 new frames: past the TCN's receptive field (7 frames), which generation carries along
    frames = generate(model, prompt, 16, torch.Generator().manual_seed(0))
    assert frames.shape == (2, 27, 64)
    assert model.training  # mode restored
    assert torch.equal(frames[:, :11], prompt)
    with torch.no_grad():
        model.eval()
        predicted = model.predict(frames)[0][:, 10:]  # predictions of frames 11..26 from their prefixes
    torch.testing.assert_close(frames[:, 11:], predicted.clamp_min(-1.0), rtol=1e-4, atol=1e-5)


def test_sampled_generation_is_deterministic_for_a_generator():
    torch.manual_seed(0)
    model = NextFrameModel(NextFrameConfig(family="ar-gru", width=16, layers=1))
    prompt = model.features(swelling_mix()[None, :1600])
    runs = [generate(model, prompt, 5, torch.Generator().manual_seed(seed), temperature=0.1) for seed in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
    assert runs[0].min() >= -1.0
    with pytest.raises(SettingsError):
        generate(model, prompt[:, :0], 5, torch.Generator())
    with pytest.raises(SettingsError):
        generate(model, prompt[..., :8], 5, torch.Generator())


def test_generate_waveform_returns_the_continuation_deterministically():
    torch.manual_seed(0)
    model = NextFrameModel(NextFrameConfig(family="ar-tcn", width=16, layers=2))
    prompt = swelling_mix()[None, :3200]
    runs = [generate_waveform(model, prompt, 20, torch.Generator().manual_seed(s), 0.05, griffin_lim_iterations=4) for s in (1, 1)]
    assert runs[0].shape == (1, 19 * CONFIG.hop_length)
    assert torch.equal(runs[0], runs[1])
    assert runs[0].abs().max() <= 1.0
