"""The unshaped L2/L∞ baselines' noise stays in its ball, per block, relative to the music."""

import math

import numpy as np
import pytest
import torch

from harmonycloak.cloak.norm_ball import NormBallCloak, NormBallSettings
from harmonycloak.errors import SettingsError
from harmonycloak.models.bag import audio_bag_configs, build_audio_bag

RATE = 16_000


def _music(seconds=0.64, seed=0):
    t = torch.arange(int(seconds * RATE)) / RATE
    envelope = torch.linspace(0.05, 0.5, t.shape[0])  # louder towards the end: per-block bounds differ
    return (envelope * torch.sin(2 * math.pi * 440 * t))[None]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_noise_stays_in_ball_even_after_large_parameters(norm):
    music = _music()
    cloak = NormBallCloak(music, RATE, NormBallSettings(norm=norm, power_ratio=0.1, block_ms=80),
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cloak.free.mul_(50.0)  # far outside any ball
    noise = torch.from_numpy(cloak.render(RATE, music.shape[-1]))[0]
    blocks = noise.reshape(-1, 1280)
    music_blocks = music[0].reshape(-1, 1280)
    rms = music_blocks.square().mean(-1).sqrt()
    if norm == "linf":
        assert (blocks.abs().max(-1).values <= math.sqrt(0.1) * rms * (1 + 1e-5)).all()
    # both norms: the noise power is at most 0.1 × the music's, block by block
    assert (blocks.square().sum(-1) <= 0.1 * music_blocks.square().sum(-1) * (1 + 1e-4)).all()
    # and large parameters reach the bound of the L2 ball exactly
    if norm == "l2":
        assert blocks.square().sum(-1) == pytest.approx(0.1 * music_blocks.square().sum(-1), rel=1e-4)


def test_segment_noise_matches_the_rendered_whole():
    music = _music()
    cloak = NormBallCloak(music, RATE, NormBallSettings(norm="l2"), generator=torch.Generator().manual_seed(1))
    whole = cloak.render(RATE, music.shape[-1])[0]
    starts = torch.tensor([0, 2560])
    segments = cloak.noise(starts, 2560).detach().numpy()  # (B, L, S)
    assert segments.shape == (2, 1, 2560)
    np.testing.assert_allclose(segments[1, 0], whole[2560:5120], atol=1e-7)


def test_noise_has_gradient_for_the_optimiser():
    cloak = NormBallCloak(_music(), RATE, NormBallSettings(norm="linf"), generator=torch.Generator().manual_seed(2))
    cloak.noise(torch.tensor([0]), 1280).square().sum().backward()
    assert cloak.free.grad is not None and cloak.free.grad.abs().sum() > 0


def test_bad_norm_is_a_settings_error():
    with pytest.raises(SettingsError):
        NormBallSettings(norm="l1")


def test_bag_leaves_the_target_family_out():
    for family in ("ar-transformer", "ar-gru", "ar-tcn"):
        configs = audio_bag_configs(6, tiny=True, exclude_families=(family,))
        assert len(configs) == 6 and family not in {c.family for c in configs}
    models = build_audio_bag(3, seed=0, tiny=True, exclude_families=("ar-transformer",))
    assert [m.config.family for m in models] == ["ar-gru", "ar-gru", "ar-gru"]
    with pytest.raises(SettingsError):
        audio_bag_configs(8, exclude_families=("ar-transformer",))  # only 6 left
