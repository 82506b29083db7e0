"""SymphonyNet-style transformer: size, the NLL of Eq. 3, causality, learning, checkpoints, min-min."""

from __future__ import annotations

import math

import pytest
import torch

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.models.checkpoint import load_checkpoint, save_checkpoint
from harmonycloak.models.registry import build_model
from harmonycloak.models.symphonynet import SymphonyNetConfig
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.optim.training import train_generative_model

SCALE = (0, 2, 4, 5, 7, 9, 11, 12)
MELODY_OFFSET = 12  # melody = root + 12 + SCALE[t % 8]


def scale_corpus(num_segments: int, steps: int = 32, lowest_root: int = 48) -> torch.Tensor:
    """(num, 2, steps, 128): track 0 climbs a major scale one note per step, an octave above the
    root; track 1 plays a broken triad, two steps per note. Segment i is transposed by i mod 5."""
    rolls = torch.zeros(num_segments, 2, steps, 128)
    for i in range(num_segments):
        root = lowest_root + i % 5
        for t in range(steps):
            rolls[i, 0, t, root + MELODY_OFFSET + SCALE[t % 8]] = 0.8
            rolls[i, 1, t, root + (0, 4, 7, 4)[(t // 2) % 4]] = 0.6
    return rolls


@pytest.fixture(scope="module")
def trained():
    """A tiny model trained on the scale corpus (400 Adam steps, ~2 s)."""
    corpus = scale_corpus(10)
    model = build_model("symphonynet", "tiny", seed=0)
    initial = model.generative_loss(corpus).mean().item()
    train_generative_model(model, lambda ids: corpus[ids], 10, 400, torch.Generator().manual_seed(0),
                           learning_rate=1e-2)
    return model, corpus, initial


def parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def expected_parameter_count(config: SymphonyNetConfig) -> int:
    """By hand from the architecture: event embedding C→D, bar and position tables, L pre-norm blocks
    (attention 4D²+4D, feed-forward 8D²+5D, two layer norms 4D), final norm 2D, head D→2C."""
    cells, width = config.tracks * 128, config.width
    block = 4 * width**2 + 4 * width + 8 * width**2 + 5 * width + 4 * width
    return (cells * width + width + (config.max_bars + config.steps_per_bar) * width
            + config.layers * block + 2 * width + width * 2 * cells + 2 * cells)


def test_parameter_counts_follow_the_architecture_and_the_default_is_scaled_down():
    for preset in ("tiny", "default"):
        model = build_model("symphonynet", preset)
        print(f"SymphonyNet {preset}: {parameter_count(model):,} parameters")
        assert parameter_count(model) == expected_parameter_count(model.config)
    default = build_model("symphonynet", "default").config
    assert (default.layers, default.heads, default.width) == (4, 8, 256)
    assert 3_000_000 < parameter_count(build_model("symphonynet", "default")) < 30_000_000 / 5  # paper: 30M


def test_loss_is_the_bernoulli_and_gaussian_nll_per_cell():
    model = build_model("symphonynet", "tiny", seed=1)
    steps = model.features(scale_corpus(3))
    logits, velocity = model.next_step_parameters(steps)
    target = steps[:, 1:]
    sounding = target > 0
    p = torch.sigmoid(logits.double())
    nll = torch.where(sounding, -torch.log(p), -torch.log1p(-p))
    nll = nll + torch.where(sounding, (target - velocity).double() ** 2 / (2 * 0.1**2), 0.0)
    torch.testing.assert_close(model.loss_from_features(steps).double(), nll.mean(dim=(1, 2)), rtol=1e-5, atol=1e-6)


def test_prediction_is_the_expected_velocity_and_the_target_the_next_step():
    model = build_model("symphonynet", "tiny", seed=1)
    steps = model.features(scale_corpus(2))
    prediction, target = model.predict(steps)
    logits, velocity = model.next_step_parameters(steps)
    assert prediction.shape == target.shape == (2, 31, 256)
    torch.testing.assert_close(prediction, torch.sigmoid(logits) * velocity)
    assert torch.equal(target, steps[:, 1:])


def test_a_prediction_depends_on_past_steps_only():
    model = build_model("symphonynet", "tiny", seed=2)
    steps = model.features(torch.rand(1, 2, 12, 128)).requires_grad_(True)
    prediction, _ = model.predict(steps)
    prediction[:, 5].sum().backward()  # the prediction of step 6 from steps 0..5
    influence = steps.grad.abs().sum(dim=(0, 2))
    assert (influence[:6] > 0).all()
    assert (influence[6:] == 0).all()


def test_generative_loss_has_a_finite_gradient_in_the_roll():
    model = build_model("symphonynet", "tiny", seed=3)
    rolls = scale_corpus(2).requires_grad_(True)
    model.generative_loss(rolls).sum().backward()
    assert torch.isfinite(rolls.grad).all()
    assert rolls.grad[rolls.detach() > 0].abs().min() > 0  # every sounding velocity moves the loss


def test_training_learns_the_order_of_the_music_not_only_its_notes(trained):
    model, corpus, initial = trained
    with torch.no_grad():
        final = model.generative_loss(corpus).mean().item()
        shuffled = corpus[:, :, torch.randperm(32, generator=torch.Generator().manual_seed(5))]
        shuffled_loss = model.generative_loss(shuffled).mean().item()
        logits, _ = model.next_step_parameters(model.features(corpus))
    assert final < initial / 10
    assert shuffled_loss > 3 * final  # same notes in another order: the model learned the order
    # After one full scale the next melody note is known: the most likely melody pitch must be it.
    predicted_pitch = logits.view(10, 31, 2, 128)[:, 7:, 0].argmax(dim=-1)
    roots = 48 + torch.arange(10) % 5
    true_pitch = roots[:, None] + MELODY_OFFSET + torch.tensor(SCALE)[(torch.arange(8, 32)) % 8]
    assert (predicted_pitch == true_pitch).float().mean() > 0.9


def test_generation_continues_a_learned_scale(trained):
    """Sampled notes compound their errors, so the bar is precision and recall of the melody's
    notes over 10 prompts above one half (an untrained model sounds every cell with p ≈ 1/2:
    precision ≈ 1/128)."""
    model, corpus, _ = trained
    prompt = corpus[:, :, :9]
    rolls = model.generate(prompt, 7, torch.Generator().manual_seed(0))
    assert rolls.shape == (10, 2, 16, 128)
    assert torch.equal(rolls[:, :, :9], prompt)
    assert rolls.min() >= 0 and rolls.max() <= 1
    generated, true = rolls[:, 0, 9:] > 0, corpus[:, 0, 9:16] > 0
    hits = (generated & true).sum().item()
    assert hits / generated.sum().item() > 0.5 and hits / true.sum().item() > 0.5
    with pytest.raises(SettingsError):
        model.generate(prompt, 30, torch.Generator().manual_seed(0))  # 39 steps > 4 bars of 8


def test_rolls_of_the_wrong_shape_are_refused_in_words():
    model = build_model("symphonynet", "tiny")
    with pytest.raises(ModelError, match="2 tracks × 2 to 32 steps"):
        model.generative_loss(torch.rand(1, 3, 16, 128))
    with pytest.raises(ModelError):
        model.generative_loss(torch.rand(1, 2, 33, 128))


def test_same_seed_same_weights_other_seed_other_weights():
    first, second, other = (build_model("symphonynet", "tiny", seed=s) for s in (7, 7, 8))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))


def test_checkpoint_round_trip_keeps_the_model(tmp_path, trained):
    model, corpus, _ = trained
    loaded, family = load_checkpoint(save_checkpoint(model, "symphonynet", tmp_path / "sn.pt"))
    assert family == "symphonynet" and loaded.config == model.config
    assert torch.equal(loaded.generative_loss(corpus), model.generative_loss(corpus))


class AdditiveVelocityProblem:
    """Test-only cloak problem: x + δ on the sounding cells of fixed rolls, δ unconstrained.

    Only sounding cells move: whether a note sounds is a discrete fact with no gradient, so
    noise on silent cells would switch notes on without the loss seeing it coming.
    """

    def __init__(self, rolls: torch.Tensor) -> None:
        self.rolls = rolls
        self.sounding = (rolls > 0).float()
        self.delta = torch.zeros_like(rolls, requires_grad=True)

    @property
    def num_segments(self) -> int:
        return self.rolls.shape[0]

    def noise_parameters(self) -> list[torch.Tensor]:
        return [self.delta]

    def protected_batch(self, segment_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = self.delta[segment_ids] * self.sounding[segment_ids]
        return self.rolls[segment_ids] + noise, (noise.square().mean(dim=(1, 2, 3)) + 1e-20).sqrt()

    def clean_batch(self, segment_ids: torch.Tensor) -> torch.Tensor:
        return self.rolls[segment_ids]


def _minmin_config(**changes) -> MinMinConfig:
    settings = dict(mode="whitebox", pgd_steps=8, pgd_step_size=0.05, alpha=0.0, max_rounds=2, batch_segments=4,
                    min_relative_improvement=0.0)
    return MinMinConfig(**(settings | changes))


def test_whitebox_min_min_removes_the_velocity_error_of_a_fixed_model():
    """θ fixed (zero outer learning rate). The noise reaches the velocity term of the NLL directly
    (it can move each velocity to the predicted one): it must remove at least half of it."""
    model = build_model("symphonynet", "tiny", seed=0)
    problem = AdditiveVelocityProblem(scale_corpus(6))
    with torch.no_grad():
        steps = model.features(problem.rolls)
        _, velocity = model.next_step_parameters(steps)
        target = steps[:, 1:]
        velocity_term = ((target > 0) * (target - velocity) ** 2 / (2 * 0.1**2)).mean().item()
    clean = mean_generative_loss([model], problem.clean_batch, 6)
    optimise_noise(problem, [model], _minmin_config(outer_learning_rate=0.0), torch.Generator().manual_seed(0))
    protected = mean_generative_loss([model], lambda ids: problem.protected_batch(ids)[0], 6)
    assert velocity_term > 0.01
    assert protected < clean - 0.5 * velocity_term


def test_whitebox_min_min_trains_the_model_with_sgd_in_its_outer_step():
    model = build_model("symphonynet", "tiny", seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    problem = AdditiveVelocityProblem(scale_corpus(6))
    history = optimise_noise(problem, [model], _minmin_config(), torch.Generator().manual_seed(0))
    assert all(math.isfinite(loss) for loss in history.protected_loss)
    assert history.protected_loss[1] < history.protected_loss[0]
    assert all(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
