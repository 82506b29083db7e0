"""The stacked cloak: the masked noise and the gains at once, each inside its own bounds."""

import numpy as np
import torch

from harmonycloak.cloak.gain import GainModulationCloak
from harmonycloak.cloak.masked import MaskedSpectrumCloak
from harmonycloak.cloak.stacked import StackedCloak
from harmonycloak.flows.audio.protect import build_cloak
from harmonycloak.settings import ProtectionSettings

RATE_HZ = 16_000


def chord(seconds: float = 1.0) -> torch.Tensor:
    time = torch.arange(int(seconds * RATE_HZ)) / RATE_HZ
    tones = sum(torch.sin(2 * np.pi * f * time) / (1 + n) for n, f in enumerate((220.0, 330.0, 440.0, 1760.0)))
    return (0.1 * tones)[None].float()


def stacked(music: torch.Tensor) -> StackedCloak:
    settings = ProtectionSettings(cloak="masked-gain", seed=3).resolved("audio")
    return build_cloak(music, settings, torch.Generator().manual_seed(3))


def test_masked_gain_builds_both_cloaks_on_the_music_and_writes_their_sum():
    music = chord()
    cloak = stacked(music)
    masked, gain = cloak.parts
    assert isinstance(masked, MaskedSpectrumCloak) and isinstance(gain, GainModulationCloak)
    # medium strength: the gains beside the masked noise, whose sum the band check holds, may reach ±2 dB;
    # alone, unheld, ±1 dB
    assert masked.settings.bound_rule == "band-pool" and gain.settings.max_gain_db == 2.0
    alone = build_cloak(music, ProtectionSettings(cloak="gain", seed=3).resolved("audio"), torch.Generator())
    assert isinstance(alone, GainModulationCloak) and alone.settings.max_gain_db == 1.0
    starts = torch.tensor([0, 2 * cloak.alignment_samples])
    with torch.no_grad():
        total = cloak.noise(starts, 2048)
        assert torch.allclose(total, masked.noise(starts, 2048) + gain.noise(starts, 2048))
    assert cloak.keeps_loudness  # the masked part's in-phase share is taken away as it is written
    rendered = cloak.render(RATE_HZ, music.shape[-1])
    parts = masked.render(RATE_HZ, music.shape[-1]) + gain.render(RATE_HZ, music.shape[-1])
    np.testing.assert_allclose(rendered, parts, atol=1e-6)


def test_a_step_moves_both_parts_and_randomise_draws_both():
    cloak = stacked(chord())
    before = [p.detach().clone() for p in cloak.parameters()]
    assert len(before) == 2  # the masked coefficients and the gains
    loss = cloak.noise(torch.tensor([0]), 4096).square().sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cloak.parameters())
    cloak.randomise(torch.Generator().manual_seed(0))
    after = list(cloak.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before))
    again = stacked(chord())
    again.randomise(torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), after))  # seeded
