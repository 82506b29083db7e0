"""MuseGAN-style GAN: size, shapes, the noise's loss, training, checkpoints, and the min-min loop."""

from __future__ import annotations

import math

import pytest
import torch

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.models.checkpoint import load_checkpoint, save_checkpoint
from harmonycloak.models.bag import MUSEGAN_BAG, build_musegan_bag, musegan_bag_configs
from harmonycloak.models.musegan import TINY_PHRASE, MuseGanConfig, train_musegan
from harmonycloak.models.registry import MODEL_FAMILIES, build_model
from harmonycloak.optim.minmin import MinMinConfig, mean_generative_loss, optimise_noise
from harmonycloak.optim.objectives import output_divergence

SCALE = (0, 2, 4, 5, 7, 9, 11, 12)


def scale_corpus(num_phrases: int, tracks: int = 2, steps: int = 16, lowest_root: int = 48) -> torch.Tensor:
    """(num, tracks, steps, 128): track 0 climbs a major scale, track 1 plays a broken triad;
    phrase i is transposed up by i mod 5 semitones. Every note lies in the tiny phrase's range 48–71."""
    rolls = torch.zeros(num_phrases, tracks, steps, 128)
    for i in range(num_phrases):
        root = lowest_root + i % 5
        for t in range(steps):
            rolls[i, 0, t, root + 7 + SCALE[t % 8]] = 0.8
            rolls[i, 1, t, root + (0, 4, 7, 4)[(t // 2) % 4]] = 0.6
    return rolls


class AdditiveRollProblem:
    """Test-only cloak problem: x + δ on fixed rolls, δ unconstrained (the MIDI cloak comes later).

    Regulariser: the root mean square of δ per segment (the audio problem's reading of ‖δ‖₂).
    """

    def __init__(self, rolls: torch.Tensor) -> None:
        self.rolls = rolls
        self.delta = torch.zeros_like(rolls, requires_grad=True)

    @property
    def num_segments(self) -> int:
        return self.rolls.shape[0]

    def noise_parameters(self) -> list[torch.Tensor]:
        return [self.delta]

    def protected_batch(self, segment_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = self.delta[segment_ids]
        return self.rolls[segment_ids] + noise, (noise.square().mean(dim=(1, 2, 3)) + 1e-20).sqrt()

    def clean_batch(self, segment_ids: torch.Tensor) -> torch.Tensor:
        return self.rolls[segment_ids]


def parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_default_preset_has_about_720k_parameters_as_in_the_paper():
    model = build_model("musegan", "default")
    count = parameter_count(model)
    print(f"MuseGAN default: {count:,} parameters "
          f"(generator {parameter_count(model.generator_network):,}, "
          f"discriminator {parameter_count(model.discriminator_network):,})")
    assert 700_000 <= count <= 740_000  # paper Table 2: 720k
    assert parameter_count(build_model("musegan", "tiny")) < 5_000


def test_bag_holds_ten_variants_of_different_architecture_and_size():
    configs = musegan_bag_configs(10)
    assert len(set(configs)) == 10
    sizes = [parameter_count(model) for model in build_musegan_bag(10, seed=0)]
    assert len(set(sizes)) == 10
    assert max(sizes) > 2 * min(sizes)  # "varying numbers of parameters" (§5.1)
    assert configs[0] == MODEL_FAMILIES["musegan"].presets["default"]
    assert len(MUSEGAN_BAG) == 10
    with pytest.raises(SettingsError):
        musegan_bag_configs(11)


def test_tiny_bag_reads_tiny_phrases_and_is_seeded_per_model():
    rolls = scale_corpus(3)
    bag = build_musegan_bag(10, seed=4, tiny=True)
    for model in bag:
        loss = model.generative_loss(rolls)
        assert loss.shape == (3,) and torch.isfinite(loss).all()
    again = build_musegan_bag(2, seed=4, tiny=True)
    assert torch.equal(again[1].generative_loss(rolls), bag[1].generative_loss(rolls))


def test_features_split_bars_and_keep_the_pitch_range():
    model = build_model("musegan", "tiny")
    rolls = torch.rand(2, 2, 16, 128)
    phrases = model.features(rolls)
    assert phrases.shape == (2, 2, 2, 8, 24)
    # bar n, step s, kept pitch p is roll step n·8 + s, MIDI pitch 48 + p
    assert phrases[1, 0, 1, 3, 5] == rolls[1, 0, 11, 53]
    assert phrases[0, 1, 0, 7, 23] == rolls[0, 1, 7, 71]
    in_range = torch.zeros_like(rolls)
    in_range[..., 48:72] = rolls[..., 48:72]
    assert torch.equal(model.to_rolls(phrases), in_range)


def test_a_roll_of_the_wrong_shape_is_refused_in_words():
    model = build_model("musegan", "tiny")
    with pytest.raises(ModelError, match="2 tracks × 2 bars of 8 steps"):
        model.generative_loss(torch.rand(2, 3, 16, 128))


def test_generated_phrases_are_velocities_within_the_kept_pitches():
    model = build_model("musegan", "tiny")
    rolls = model.generate(5, torch.Generator().manual_seed(0))
    assert rolls.shape == (5, 2, 16, 128)
    assert rolls.min() >= 0 and rolls.max() <= 1
    assert rolls[..., :48].abs().sum() == 0 and rolls[..., 72:].abs().sum() == 0
    assert rolls[..., 48:72].min() > 0  # a sigmoid never reaches 0


def test_generative_loss_is_minus_log_d_and_has_a_gradient_in_the_roll():
    model = build_model("musegan", "tiny", seed=1)
    rolls = scale_corpus(4).requires_grad_(True)
    loss = model.generative_loss(rolls)
    probability_real = torch.sigmoid(model.discriminator_logits(model.features(rolls)))
    torch.testing.assert_close(loss, -torch.log(probability_real))
    loss.sum().backward()
    gradient = rolls.grad
    assert torch.isfinite(gradient).all()
    assert gradient[..., 48:72].abs().sum() > 0
    assert gradient[..., :48].abs().sum() == 0 and gradient[..., 72:].abs().sum() == 0  # pitches it never sees


def test_predict_gives_the_discriminator_features_and_the_divergence_measures_a_change():
    model = build_model("musegan", "tiny", seed=2)
    phrases = model.features(scale_corpus(3))
    prediction, target = model.predict(phrases)
    assert prediction.shape == (3, 2, 8)  # T' = 16 steps halved 3 times, D = 8 channels
    assert torch.equal(prediction, target)
    rolls = scale_corpus(3)
    assert output_divergence(model, rolls, rolls).abs().max() < 1e-5  # KL of a distribution with itself
    changed = rolls + 0.3 * torch.rand(rolls.shape, generator=torch.Generator().manual_seed(0))
    assert (output_divergence(model, changed, rolls) > 1e-3).all()


def test_each_adversarial_half_step_moves_only_its_own_network():
    rolls = scale_corpus(4)
    for moving, frozen in (("discriminator_network", "generator_network"),
                           ("generator_network", "discriminator_network")):
        model = build_model("musegan", "tiny", seed=3)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        # Both optimisers hold every parameter, as the min-min loop's one SGD does.
        active = torch.optim.SGD(model.parameters(), lr=0.5)
        idle = torch.optim.SGD(model.parameters(), lr=0.0)
        optimisers = (active, idle) if moving == "discriminator_network" else (idle, active)
        model.adversarial_step(model.features(rolls), *optimisers, torch.Generator().manual_seed(0))
        changed = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
        assert changed == {moving}, (moving, changed)


def test_training_step_uses_the_loops_one_optimiser_and_restores_gradient_flags():
    model = build_model("musegan", "tiny", seed=3)
    before = [p.detach().clone() for p in model.parameters()]
    optimiser = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9)
    model.discriminator_network.head.requires_grad_(False)
    losses = model.training_step(scale_corpus(4), optimiser)
    assert math.isfinite(losses.discriminator) and math.isfinite(losses.generator)
    assert not model.discriminator_network.head.weight.requires_grad
    assert model.generator_network.project[0].weight.requires_grad
    changed = [not torch.equal(p, b) for p, b in zip(model.parameters(), before)]
    assert sum(changed) > len(changed) // 2


def test_attacker_training_teaches_the_discriminator_and_moves_the_generator_towards_the_corpus():
    """GAN losses do not fall together, so two separate signals: the discriminator's loss falls
    from chance (log 4, it cannot tell real from generated) as it learns the corpus, and the
    generator's average phrase moves towards the corpus's average phrase."""
    corpus = scale_corpus(16)
    model = build_model("musegan", "tiny", seed=0)
    real_mean = model.features(corpus).mean(dim=0)

    def distance_to_corpus() -> float:
        model.eval()
        generated = model.features(model.generate(256, torch.Generator().manual_seed(1)))
        model.train()
        return (generated.mean(dim=0) - real_mean).abs().mean().item()

    initial_distance = distance_to_corpus()
    curve = train_musegan(model, lambda ids: corpus[ids], 16, 150, torch.Generator().manual_seed(0),
                          learning_rate=1e-3)
    assert abs(curve[0].discriminator - math.log(4)) < 0.05
    assert max(step.discriminator for step in curve[-10:]) < 0.5 * math.log(4)
    assert distance_to_corpus() < 0.85 * initial_distance


def test_same_seed_same_weights_other_seed_other_weights():
    first, second, other = (build_model("musegan", "tiny", seed=s) for s in (7, 7, 8))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(first.parameters(), other.parameters()))
    assert first.latent_seed == second.latent_seed != other.latent_seed


def test_checkpoint_round_trip_keeps_the_model(tmp_path):
    model = build_model("musegan", "tiny", seed=5)
    model.training_step(scale_corpus(4), torch.optim.SGD(model.parameters(), lr=0.05))  # move batch-norm stats
    model.eval()
    path = save_checkpoint(model, "musegan", tmp_path / "gan.pt")
    loaded, family = load_checkpoint(path)
    loaded.eval()
    assert family == "musegan" and loaded.config == model.config
    rolls = scale_corpus(3)
    assert torch.equal(loaded.generative_loss(rolls), model.generative_loss(rolls))
    assert torch.equal(loaded.generate(2, torch.Generator().manual_seed(3)),
                       model.generate(2, torch.Generator().manual_seed(3)))


def _minmin_config(**changes) -> MinMinConfig:
    settings = dict(mode="whitebox", pgd_steps=8, pgd_step_size=0.05, meta_test_steps=2, alpha=0.0,
                    max_rounds=2, batch_segments=4, min_relative_improvement=0.0)
    return MinMinConfig(**(settings | changes))


def _mean_losses(models, problem) -> tuple[float, float]:
    protected = mean_generative_loss(models, lambda ids: problem.protected_batch(ids)[0], problem.num_segments)
    clean = mean_generative_loss(models, problem.clean_batch, problem.num_segments)
    return protected, clean


def _briefly_trained(model, steps: int):
    """A few attacker steps: a freshly initialised discriminator hardly reacts to its input."""
    corpus = scale_corpus(16)
    train_musegan(model, lambda ids: corpus[ids], 16, steps, torch.Generator().manual_seed(0), learning_rate=3e-3)
    return model


def test_whitebox_min_min_lowers_the_loss_of_a_fixed_gan():
    """With a zero outer learning rate θ stays put: the fall is the noise's doing alone."""
    model = _briefly_trained(build_model("musegan", "tiny", seed=0), 20)
    problem = AdditiveRollProblem(scale_corpus(6))
    config = _minmin_config(outer_learning_rate=0.0)
    history = optimise_noise(problem, [model], config, torch.Generator().manual_seed(0))
    protected, clean = _mean_losses([model], problem)
    assert len(history.protected_loss) == 2
    assert protected < 0.5 * clean


def test_whitebox_min_min_trains_the_gan_in_its_outer_step():
    """The loop's outer step moves θ through `training_step` (the fall in loss here is partly the
    GAN having trained on x + δ; the fixed-GAN test above isolates the noise's share)."""
    model = build_model("musegan", "tiny", seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    problem = AdditiveRollProblem(scale_corpus(6))
    history = optimise_noise(problem, [model], _minmin_config(), torch.Generator().manual_seed(0))
    assert all(math.isfinite(loss) for loss in history.protected_loss)
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    protected, clean = _mean_losses([model], problem)
    assert protected < clean


def test_blackbox_min_min_with_a_tiny_bag_lowers_the_bags_loss():
    bag = [_briefly_trained(model, 10) for model in build_musegan_bag(10, seed=0, tiny=True)]
    problem = AdditiveRollProblem(scale_corpus(6))
    config = _minmin_config(mode="blackbox", outer_learning_rate=0.0)
    history = optimise_noise(problem, bag, config, torch.Generator().manual_seed(0))
    assert [len(models) for models in history.sampled_models] == [7, 7]  # 7 of 10 per round (§5.1)
    assert len(history.divergence) == 2 and all(math.isfinite(d) for d in history.divergence)
    protected, clean = _mean_losses(bag, problem)
    assert protected < 0.97 * clean


def test_a_phrase_the_discriminator_cannot_halve_enough_is_refused():
    with pytest.raises(SettingsError):
        build_model("musegan", "tiny", discriminator_layers=4)  # 16 steps halved 5 times
    with pytest.raises(SettingsError):
        MODEL_FAMILIES["musegan"].builder(MuseGanConfig(phrase=TINY_PHRASE, kernel_steps=2))


def test_a_generator_that_starts_sparse_sounds_few_cells_before_any_training():
    # Without the setting every cell of an untrained generator starts near sigmoid(0) = 0.5; with
    # it, the output bias is the logit of the density, so a typical cell sits near that density.
    dense = build_model("musegan", "default", seed=0).eval()
    sparse = build_model("musegan", "default", seed=0, initial_note_density=0.01).eval()
    latents = dense.sample_latents(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        dense_cells, sparse_cells = dense.generator_network(latents), sparse.generator_network(latents)
    assert 0.3 < float(dense_cells.median()) < 0.7
    assert float(sparse_cells.median()) == pytest.approx(0.01, rel=0.5)
    assert float((sparse_cells >= 0.5).float().mean()) < 0.01 < float((dense_cells >= 0.5).float().mean())
    for density in (0.0, 1.0, -0.1):
        with pytest.raises(SettingsError, match="note density"):
            build_model("musegan", "default", seed=0, initial_note_density=density)


def test_the_training_loss_is_the_discriminators_step_on_real_music_and_moves_it_alone():
    model = build_model("musegan", "tiny", seed=3)
    rolls = scale_corpus(4)
    loss = model.training_loss(rolls, torch.Generator().manual_seed(5))
    fake = model.generator_network(model.sample_latents(4, torch.Generator().manual_seed(5)))
    real_logits = model.discriminator_logits(model.features(rolls))
    by_hand = (torch.log1p(torch.exp(-real_logits)).mean() + torch.log1p(torch.exp(model.discriminator_logits(fake))).mean())
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is None for p in model.generator_network.parameters())  # the fakes carry no gradient
    assert all(p.grad is not None for p in model.discriminator_network.parameters())


def test_the_reverse_gradient_takes_a_gan_and_makes_its_discriminators_step_learn_less_of_the_music():
    from harmonycloak.optim.objectives import build_objective

    model = _briefly_trained(build_model("musegan", "tiny", seed=0), 10)

    def mean_loss(pgd_steps: int) -> float:
        config = _minmin_config(outer_learning_rate=0.0, max_rounds=1, pgd_steps=pgd_steps, pgd_step_size=0.02)
        history = optimise_noise(AdditiveRollProblem(scale_corpus(6)), [model], config, torch.Generator().manual_seed(0),
                                 objective=build_objective("reverse-gradient", "whitebox"))
        return history.protected_loss[0]  # the round's mean over its steps

    # The loss is the share of a clean step that a step on the released rolls takes: 1 on the
    # clean rolls (a first step reads them), far lower once the noise has turned the
    # discriminator's step away from them.
    assert mean_loss(1) == pytest.approx(1.0, abs=0.05)
    assert mean_loss(12) < 0.5
