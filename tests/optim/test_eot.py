"""Expectation over transformations: a drawn purification is applied as the purification itself
computes it, the gradient passes as through the identity, the draws are seeded and leave the
optimiser's own draws alone, and the loop reads every protected batch through it."""

import math

import numpy as np
import pytest
import torch

from harmonycloak.errors import SettingsError
from harmonycloak.optim.eot import IDENTITY, Transformations
from harmonycloak.purification import apply_attack
from harmonycloak.settings import WORKING_RATE_HZ


def _tone_batch(count: int = 2, seconds: float = 0.5) -> torch.Tensor:
    time_s = torch.arange(round(seconds * WORKING_RATE_HZ)) / WORKING_RATE_HZ
    return torch.stack([0.3 * torch.sin(2 * math.pi * f * time_s) for f in (330.0, 523.0)[:count]])


def test_a_drawn_codec_gives_the_codec_s_output_and_the_identity_s_gradient():
    transform = Transformations(("mp3-128k",), WORKING_RATE_HZ, seed=0)
    seen = set()
    for _ in range(8):  # both the codec and the identity are drawn within 8 batches at this seed
        batch = _tone_batch().requires_grad_(True)
        out = transform(batch)
        weights = torch.randn(batch.shape, generator=torch.Generator().manual_seed(1))
        (out * weights).sum().backward()
        assert torch.equal(batch.grad, weights)  # straight through: ∂y/∂z = I, whatever was drawn
        codec = np.stack([apply_attack("mp3-128k", row, WORKING_RATE_HZ) for row in batch.detach().numpy()])
        if torch.equal(out.detach(), batch.detach()):
            seen.add(IDENTITY)
        else:
            np.testing.assert_allclose(out.detach().numpy(), codec, atol=1e-6)
            assert float(np.abs(codec - batch.detach().numpy()).max()) > 1e-3  # the codec did change the batch
            seen.add("mp3-128k")
    assert seen == {IDENTITY, "mp3-128k"}
    assert transform.draws == {IDENTITY: 8 - transform.draws["mp3-128k"], "mp3-128k": transform.draws["mp3-128k"]}


def test_draws_are_seeded_and_cover_every_choice():
    def draws(seed):
        transform = Transformations(("resample-22k", "purify-noise-lowpass"), WORKING_RATE_HZ, seed)
        outputs = [transform(_tone_batch(1, 0.1)) for _ in range(30)]
        return transform.draws, outputs

    (counts_a, outputs_a), (counts_b, outputs_b) = draws(3), draws(3)
    assert counts_a == counts_b and all(torch.equal(a, b) for a, b in zip(outputs_a, outputs_b))
    assert sum(counts_a.values()) == 30 and min(counts_a.values()) > 0  # 1 in 3 each: P(a choice never drawn) < 1e-5


def test_unknown_purifications_are_refused_with_the_known_ones():
    with pytest.raises(SettingsError, match="mp3-128k"):
        Transformations(("mp3-64k",), WORKING_RATE_HZ, seed=0)
    with pytest.raises(SettingsError, match="list of purification names"):
        from harmonycloak.settings import ProtectionSettings

        ProtectionSettings(eot="mp3-128k")


def test_the_loop_reads_every_protected_batch_through_the_transform():
    from harmonycloak.models.registry import build_model
    from harmonycloak.optim.minmin import MinMinConfig, optimise_noise
    from tests.optim.test_minmin import AdditiveProblem, melody_segments

    config = MinMinConfig(mode="whitebox", pgd_steps=3, max_rounds=2, batch_segments=2, min_relative_improvement=-1.0)

    def run(transform):
        problem = AdditiveProblem(melody_segments(4, 0.32))
        history = optimise_noise(problem, [build_model("ar-transformer", "tiny", seed=0)], config,
                                 torch.Generator().manual_seed(0), transform=transform)
        return problem.parameter.detach().clone(), history

    calls = []

    def identity(inputs):
        calls.append(inputs.shape[0])
        return inputs

    plain, plain_history = run(None)
    through, through_history = run(identity)
    assert torch.equal(plain, through) and plain_history.protected_loss == through_history.protected_loss
    # per round: the outer step reads 2 batches once, the inner step 2 batches × 3 PGD steps
    assert len(calls) == 2 * (2 + 2 * 3) and sum(calls) == 2 * (4 + 4 * 3)

    def silenced(inputs):  # the model hears silence, the gradient passes unchanged
        return inputs + (torch.zeros_like(inputs) - inputs).detach()

    _, history = run(silenced)
    assert history.protected_loss != plain_history.protected_loss


def test_protecting_with_eot_records_its_draws_and_midi_refuses_it(tmp_path):
    from harmonycloak.flows.audio.protect import cloak_tracks
    from harmonycloak.flows.midi.protect import protect_midi_file
    from harmonycloak.settings import ProtectionSettings

    time_s = np.arange(3 * 44_100) / 44_100
    song = (0.3 * np.sin(2 * np.pi * 330.0 * time_s) * (1 + np.sin(2 * np.pi * 2 * time_s)) / 2).astype(np.float32)[None]
    settings = ProtectionSettings(cloak="masked", model_preset="tiny", bag_size=2, models_per_round=2, pgd_steps=2,
                                  max_rounds=1, eot=("mp3-128k", "resample-22k"))
    outcome = cloak_tracks([song], 44_100, settings)
    draws = outcome.summary["eot_draws"]
    assert set(draws) == {IDENTITY, "mp3-128k", "resample-22k"} and sum(draws.values()) > 0
    assert np.isfinite(outcome.noises[0]).all() and np.abs(outcome.noises[0]).max() > 0
    with pytest.raises(SettingsError, match="--eot"):
        protect_midi_file(tmp_path / "song.mid", tmp_path / "out.mid", ProtectionSettings(eot=("mp3-128k",)))
