"""The mel diffusion model: the forward process against its closed form, fixed evaluation draws."""

import math

import numpy as np
import torch

from harmonycloak.models.registry import build_model


def tiny_diffusion(seed=0):
    return build_model("mel-diffusion", "tiny", seed=seed)


def test_cumulative_alphas_follow_the_cosine_schedule():
    model = tiny_diffusion()
    steps, s = model.config.diffusion_steps, model.config.cosine_offset
    f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2
    expected = np.array([f(t + 1) / f(0) for t in range(steps)])
    # β clipping at 0.999 only touches the very last step
    np.testing.assert_allclose(model.alphas_cumprod[:-1].numpy(), expected[:-1], rtol=1e-5, atol=1e-7)
    assert model.alphas_cumprod[-1] < 1e-3 and (model.alphas_cumprod.diff() < 0).all()


def test_forward_process_matches_q_of_xt_given_x0():
    model = tiny_diffusion()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.5, -1.0, 2.0]])
    for t in (0, 10, 30, 49):
        alpha = float(model.alphas_cumprod[t])
        noise = torch.randn(200_000, 3, generator=generator)
        draws = model.diffuse(x0.expand(200_000, 3), torch.full((200_000,), t), noise)
        torch.testing.assert_close(draws.mean(0), math.sqrt(alpha) * x0[0], atol=0.01, rtol=0)
        torch.testing.assert_close(draws.var(0), torch.full((3,), 1 - alpha), atol=0.01, rtol=0.02)


def test_eval_loss_uses_fixed_draws_and_train_loss_does_not():
    model = tiny_diffusion().eval()
    waveform = torch.randn(2, 8000) * 0.1
    assert torch.equal(model.generative_loss(waveform), model.generative_loss(waveform))
    model.train()
    assert not torch.equal(model.generative_loss(waveform), model.generative_loss(waveform))


def test_gradient_in_the_waveform_exists_and_is_finite():
    model = tiny_diffusion().eval()
    waveform = (torch.randn(2, 8000) * 0.1).requires_grad_()
    loss = model.generative_loss(waveform)
    assert loss.shape == (2,)
    loss.sum().backward()
    assert torch.isfinite(waveform.grad).all() and waveform.grad.abs().sum() > 0


def test_sampling_gives_frames_of_the_front_end_and_is_reproducible():
    model = tiny_diffusion().eval()
    condition = model.conditioner.embed(torch.randn(2, 8000) * 0.1)
    frames = model.sample(condition, 21, torch.Generator().manual_seed(1), steps=5)
    assert frames.shape == (2, 20, model.config.conditioner.frontend.n_mels) and frames.min() >= -1.0
    assert torch.equal(frames, model.sample(condition, 21, torch.Generator().manual_seed(1), steps=5))
    waveform = model.generate(torch.randn(1, 8000) * 0.1, 16, torch.Generator().manual_seed(1), steps=3)
    assert waveform.shape == (1, 15 * 160)


def test_velocity_target_gives_back_x0_and_noise_by_hand():
    model = tiny_diffusion()
    generator = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(3, 4, 8, generator=generator), torch.randn(3, 4, 8, generator=generator)
    t = torch.tensor([0, 20, 49])
    alpha = model.alphas_cumprod[t].view(-1, 1, 1)
    xt, v = model.diffuse(x0, t, noise), model.velocity(x0, t, noise)
    # x_t = √ᾱ x0 + √(1−ᾱ) ε and v = √ᾱ ε − √(1−ᾱ) x0 rotate (x0, ε) by the angle with cos = √ᾱ:
    torch.testing.assert_close(alpha.sqrt() * xt - (1 - alpha).sqrt() * v, x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((1 - alpha).sqrt() * xt + alpha.sqrt() * v, noise, atol=1e-5, rtol=1e-5)


def test_a_diffusion_model_at_its_own_floor_learns_deeper_frames_and_its_conditioner_reads_them_at_its_own():
    import pytest

    from harmonycloak.errors import SettingsError
    from harmonycloak.models.mel_diffusion import config_at_floor
    from harmonycloak.models.registry import build_from_config, preset_config

    plain = tiny_diffusion()
    deep = build_from_config("mel-diffusion", config_at_floor(preset_config("mel-diffusion", "tiny"), 1e-10))
    assert (deep.config.mel_mean, deep.config.mel_std) == (-0.12, 0.41)
    time = torch.arange(16_000) / 16_000
    quiet = (10 ** (-70 / 20) * torch.sin(2 * math.pi * 1000 * time))[None]  # 10^-7 in its band
    assert plain.features(quiet).max().item() == pytest.approx(-1.0, abs=0.005)
    assert deep.features(quiet).max().item() == pytest.approx(-0.4, abs=0.03)  # (log10(10^-7) + 5) / 5
    music = 0.3 * torch.sin(2 * math.pi * 440 * time[:8_000])[None] * torch.linspace(1, 1e-3, 8_000)
    deep.conditioner.load_state_dict(plain.conditioner.state_dict())
    assert torch.allclose(deep.condition_of(deep.features(music)), plain.conditioner.embed(music), atol=1e-4)
    assert deep.feature_key.log_floor == 1e-10 and plain.feature_key.log_floor == 1e-5
    with pytest.raises(SettingsError, match="at log-mel floors of -50 dB, -100 dB only, not -80 dB"):
        config_at_floor(preset_config("mel-diffusion", "tiny"), 1e-8)


def test_losses_measured_from_a_share_of_the_schedule_draw_one_timestep_in_each_stratum_above_it():
    import pytest

    from dataclasses import replace

    from harmonycloak.errors import SettingsError
    from harmonycloak.models.registry import build_from_config, preset_config

    config = replace(preset_config("mel-diffusion", "tiny"), evaluation_draws=5, evaluation_timestep_from=0.6)
    model = build_from_config("mel-diffusion", config).eval()
    asked: list[torch.Tensor] = []
    model.denoiser.register_forward_pre_hook(lambda module, args: asked.append(args[1].clone()))
    model.generative_loss(torch.randn(3, 8000) * 0.1)
    # S = 50 steps, from 0.6 · 50 = 30 on: 5 strata of (50 − 30) / 5 = 4 steps, [30, 34), [34, 38), ... [46, 50)
    assert len(asked) == 5
    for stratum, timesteps in enumerate(asked):
        assert ((timesteps >= 30 + 4 * stratum) & (timesteps < 34 + 4 * stratum)).all()
    whole = build_from_config("mel-diffusion", replace(config, evaluation_timestep_from=0.0)).eval()
    asked.clear()
    whole.denoiser.register_forward_pre_hook(lambda module, args: asked.append(args[1].clone()))
    whole.generative_loss(torch.randn(3, 8000) * 0.1)
    assert int(asked[0].min()) < 10  # the first of 5 strata of the whole schedule: [0, 10)
    with pytest.raises(SettingsError, match="from a share of its schedule in \\[0, 1\\), not 1"):
        build_from_config("mel-diffusion", replace(config, evaluation_timestep_from=1.0))
