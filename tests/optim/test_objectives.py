"""The objectives of the one optimiser loop, pinned on cases whose answer is known by hand.

Each objective is checked on a model or a signal small enough to write its optimum or its
first step down: the future cue on a tone that gets louder at a known moment, the embedding
shift on an identity encoder (the gradient of a cosine), gradient matching on a model whose
training gradient is θ − mean(x) (the decoy direction is then a vector one can write down).
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.optim.embedding_shift import EmbeddingShift
from harmonycloak.optim.future_cue import CUE_DB, FutureCue
from harmonycloak.optim.gradient_matching import GradientMatching, ReverseGradient, decoy_waveform, training_gradient
from harmonycloak.optim.minmin import MinMinConfig, optimise_noise
from harmonycloak.optim.objectives import ErrorMinimising, build_objective
from harmonycloak.settings import OBJECTIVES, WORKING_RATE_HZ, ProtectionSettings

STEP = 0.25


class FreeNoise:
    """Segments of clean input (B, D) and noise δ = p, unconstrained, no regulariser."""

    def __init__(self, clean: Tensor):
        self.clean = clean
        self.parameter = torch.zeros_like(clean, requires_grad=True)

    @property
    def num_segments(self) -> int:
        return len(self.clean)

    def noise_parameters(self):
        return [self.parameter]

    def clean_batch(self, ids):
        return self.clean[ids]

    def protected_batch(self, ids):
        return self.clean[ids] + self.parameter[ids], torch.zeros(len(ids))


def run(problem, models, objective, pgd_steps=1, alpha=0.0, step=STEP):
    config = MinMinConfig(mode="whitebox", pgd_steps=pgd_steps, pgd_step_size=step, alpha=alpha, max_rounds=1,
                          batch_segments=len(problem.clean), min_relative_improvement=-1.0)
    return optimise_noise(problem, models, config, torch.Generator().manual_seed(0), objective=objective)


# --- future cue ---------------------------------------------------------------------------


def tone_getting_louder(seconds=1.0, rise_at_s=0.5, frequency_hz=300.0):
    time = torch.arange(round(seconds * WORKING_RATE_HZ)) / WORKING_RATE_HZ
    amplitude = torch.where(time < rise_at_s, 0.01, 0.3)
    return (amplitude * torch.sin(2 * math.pi * frequency_hz * time))[None]  # (1, N)


def test_the_cue_points_at_the_frame_before_the_music_gets_louder_signed_by_the_key():
    clean = tone_getting_louder()
    cue_objective = FutureCue(seed=3)
    levels, cue = cue_objective.reference([], clean, torch.tensor([0]))
    band = int(levels[0].mean(dim=0).argmax())  # the tone's band
    rise_frame = int((levels[0, 1:, band] - levels[0, :-1, band]).argmax())
    # 10 ms frames: the level steps up between the frames around 0.5 s
    assert abs(rise_frame - 50) <= 2
    assert cue[0, rise_frame, band] == cue_objective.key[band]
    assert set(cue_objective.key.tolist()) <= {-1.0, 1.0}


def test_the_cue_reads_one_on_clean_music_and_a_uniform_lift_scores_its_tanh_times_the_mean_cue():
    # white noise: every band well above the front end's log floor
    clean = tone_getting_louder() + 0.1 * torch.randn(1, 16_000, generator=torch.Generator().manual_seed(0))
    cue_objective = FutureCue(seed=0)
    reference = cue_objective.reference([], clean, torch.tensor([0]))
    assert cue_objective.loss([], clean, reference).item() == pytest.approx(1.0)
    # 6 dB louder everywhere: band energy E → 10^0.6 E; the front end reads log10(E + floor), so the
    # lift is 10 log10((10^0.6 E + floor) / (E + floor)), a hair under 6 dB in the quietest cells
    louder = clean * 10 ** (6 / 20)
    lift = cue_objective.lift_db(louder, reference[0])
    floor = cue_objective.frontend.config.log_floor
    half_range = -0.5 * math.log10(floor)
    energy = 10 ** (half_range * (reference[0].double() - 1)) - floor
    expected_lift = 10 * torch.log10((10**0.6 * energy + floor) / (energy + floor))
    assert torch.allclose(lift.double(), expected_lift, atol=0.01)
    assert lift.min().item() > 5.5
    expected = 1.0 - (reference[1] * torch.tanh(lift[:, :-1] / CUE_DB)).mean().item()
    assert cue_objective.loss([], louder, reference).item() == pytest.approx(expected, abs=1e-5)


def test_noise_before_the_rises_lowers_the_loss_under_one_key_and_raises_it_under_the_other():
    clean = tone_getting_louder()
    # a 400 Hz burst in the tone's band, in the 30 ms before the tone gets louder at 0.5 s
    time = torch.arange(480) / WORKING_RATE_HZ
    noise = torch.zeros_like(clean)
    noise[0, 7_520:8_000] = 0.05 * torch.hann_window(480) * torch.sin(2 * math.pi * 400.0 * time)
    losses = {}
    for seed in range(16):
        cue_objective = FutureCue(seed=seed)
        reference = cue_objective.reference([], clean, torch.tensor([0]))
        tone_bands = reference[0][0].mean(dim=0) > -0.5  # the bands the tone sounds in (its window leaks into two)
        keys = set(cue_objective.key[tone_bands].tolist())
        if len(keys) == 1:  # one key over the tone's bands: the burst writes one cue, right or wrong
            losses.setdefault(keys.pop(), []).append(cue_objective.loss([], clean + noise, reference).item())
    assert losses.keys() == {-1.0, 1.0}
    assert max(losses[1.0]) < 1.0 < min(losses[-1.0])


def test_the_loop_writes_the_cue_into_the_cued_cells_without_any_model():
    # noisy "music" whose band levels go up and down from frame to frame: cues everywhere
    clean = 0.05 * torch.randn(2, 8_000, generator=torch.Generator().manual_seed(4))
    cue_objective = FutureCue(seed=2)
    problem = FreeNoise(clean)
    history = run(problem, [], cue_objective, pgd_steps=30, step=0.003)
    assert history.protected_loss[0] < 0.8
    levels, cue = cue_objective.reference([], clean, torch.arange(2))
    lift = cue_objective.lift_db((clean + problem.parameter).detach(), levels)[:, :-1]
    assert lift[cue > 0].mean() > lift[cue < 0].mean() + 1.0  # dB: louder where the cue says so


# --- embedding shift ----------------------------------------------------------------------


class IdentityEncoder(nn.Module):
    family = "identity-encoder"

    def embed(self, waveform: Tensor) -> Tensor:
        return F.normalize(waveform, dim=-1)


def test_the_embedding_shift_steps_along_the_decoy_direction_removed_of_the_music_s_own():
    x = torch.tensor([[1.0, 0.0, 0.0]])
    objective = EmbeddingShift(seed=5)
    u = objective.decoy(3)
    problem = FreeNoise(x)
    run(problem, [IdentityEncoder()], objective)
    # ∂(1 − cos(x + δ, u))/∂δ at δ = 0 is −(u − (x̂·u) x̂)/‖x‖: the step goes along its sign
    tangent = u - (x[0] @ u) * x[0]
    expected = STEP * torch.sign(tangent)
    assert torch.equal(problem.parameter.detach()[0], expected)


def test_the_embedding_shift_reads_one_on_clean_music_and_zero_on_the_decoy_itself():
    x = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    objective = EmbeddingShift(seed=1)
    reference = objective.reference([IdentityEncoder()], x, torch.tensor([0]))
    assert objective.loss([IdentityEncoder()], x, reference).item() == pytest.approx(1.0)
    assert objective.loss([IdentityEncoder()], 7.0 * objective.decoy(4)[None], reference).item() == pytest.approx(
        0.0, abs=1e-6)
    with pytest.raises(ModelError, match="encoder"):
        objective.reference([nn.Linear(4, 4)], x, torch.tensor([0]))


# --- gradient matching --------------------------------------------------------------------


class MeanLearner(nn.Module):
    """Training loss ½ ‖θ − mean_b(v_b)‖²: its gradient is θ − mean(v), a vector one can write down.
    A second parameter is frozen, as a model's pretrained codec is."""

    family, kind = "mean-learner", "audio"

    def __init__(self, theta: Tensor):
        super().__init__()
        self.theta = nn.Parameter(theta.clone())
        self.frozen_part = nn.Parameter(torch.ones(5), requires_grad=False)

    def training_loss(self, inputs: Tensor, generator) -> Tensor:
        return 0.5 * (self.theta - inputs.mean(dim=0) * self.frozen_part.mean()).square().sum()


def test_the_decoy_of_a_tone_is_the_tone_three_semitones_lower():
    time = torch.arange(16_000) / 16_000
    tone = torch.sin(2 * math.pi * 440.0 * time)[None]
    spectrum = np.abs(np.fft.rfft(decoy_waveform(tone)[0].numpy() * np.hanning(16_000)))
    assert np.argmax(spectrum) == pytest.approx(440.0 * 2 ** (-3 / 12), abs=1.0)  # 1 Hz bins


def test_the_training_gradient_covers_what_the_model_trains_and_not_its_frozen_part():
    model = MeanLearner(torch.tensor([1.0, 2.0]))
    gradient = training_gradient(model, torch.tensor([[3.0, 3.0]]), create_graph=False)
    assert torch.equal(gradient, torch.tensor([-2.0, -1.0]))  # θ − v, two entries: the frozen part is left out


def test_gradient_matching_steps_so_that_the_training_step_turns_toward_the_decoy_s():
    theta, x = torch.tensor([0.0, 0.0, 0.0, 0.0]), torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    model = MeanLearner(theta)
    objective = GradientMatching()
    problem = FreeNoise(x)
    reference = objective.reference([model], x, torch.tensor([0]))
    target = reference[0]
    assert torch.allclose(target, theta - decoy_waveform(x)[0])
    before = objective.loss([model], x, reference).item()
    assert before == pytest.approx(1.0 - F.cosine_similarity(theta - x[0], target, dim=0).item(), abs=1e-6)

    run(problem, [model], objective)
    # a = θ − x − δ; ∂(1 − cos(a, t))/∂δ = (t̂ − cos·â)/‖a‖, so the first step is −STEP · sign of it
    a = theta - x[0]
    cosine = F.cosine_similarity(a, target, dim=0)
    expected = -STEP * torch.sign(F.normalize(target, dim=0) - cosine * F.normalize(a, dim=0))
    assert torch.equal(problem.parameter.detach()[0], expected)
    # the model is read, never trained, and its frozen part stays frozen
    assert torch.equal(model.theta.detach(), theta) and not model.frozen_part.requires_grad


def test_gradient_matching_reaches_the_decoy_direction():
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0, -1.0, 0.2]])
    model, objective = MeanLearner(torch.zeros(6)), GradientMatching()
    problem = FreeNoise(x)
    history = run(problem, [model], objective, pgd_steps=60)
    reference = objective.reference([model], x, torch.tensor([0]))
    after = objective.loss([model], (x + problem.parameter).detach(), reference).item()
    assert after < 0.05 < history.protected_loss[0] or after < 0.05  # cos(g, g_decoy) > 0.95


def test_the_reverse_gradient_reads_one_on_the_clean_song_and_first_steps_along_the_clean_step():
    theta, x = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    model, objective, problem = MeanLearner(theta), ReverseGradient(), FreeNoise(x)
    reference = objective.reference([model], x, torch.tensor([0]))
    # ⟨g(x), g(x)⟩ / ‖g(x)‖², by a central difference in float32
    assert objective.loss([model], x, reference).item() == pytest.approx(1.0, rel=1e-3)
    run(problem, [model], objective)
    # loss(δ) = ⟨θ − x − δ, θ − x⟩ / ‖θ − x‖², so ∂/∂δ = −(θ − x)/‖θ − x‖²: the step is +STEP · sign(θ − x)
    assert torch.equal(problem.parameter.detach()[0], STEP * torch.sign(theta - x[0]))
    assert torch.equal(model.theta.detach(), theta)  # read, never trained


def test_a_training_step_on_the_reverse_gradient_s_noise_raises_the_clean_loss():
    theta, x = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5]), torch.tensor([[1.0, -2.0, 0.5, 3.0, -1.0]])
    model, objective, problem = MeanLearner(theta), ReverseGradient(), FreeNoise(x)
    run(problem, [model], objective, pgd_steps=40, step=0.1)  # δ = 4 · sign(θ − x): the loss is linear in δ
    reference = objective.reference([model], x, torch.tensor([0]))
    released = (x + problem.parameter).detach()
    assert objective.loss([model], released, reference).item() < 0.0
    # The attacker's step on the released song, θ ← θ − η (θ − x − δ), and the clean loss ½‖θ − x‖² before and after
    learning_rate = 0.1
    stepped = theta - learning_rate * (theta - released[0])
    assert 0.5 * (stepped - x[0]).square().sum() > 0.5 * (theta - x[0]).square().sum()
    clean_step = theta - learning_rate * (theta - x[0])
    assert 0.5 * (clean_step - x[0]).square().sum() < 0.5 * (theta - x[0]).square().sum()


class NoisyMeanLearner(MeanLearner):
    """Training loss ½ ‖θ − mean(v) − ε‖² with ε drawn from the generator: gradient θ − mean(v) − ε."""

    def training_loss(self, inputs: Tensor, generator) -> Tensor:
        draw = torch.randn(self.theta.shape, generator=generator)
        return 0.5 * (self.theta - inputs.mean(dim=0) - draw).square().sum()


def test_the_reverse_gradient_averages_the_clean_step_over_draws_and_reads_each_step_under_a_new_one():
    theta, x = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([[1.0, -2.0, 0.5]])
    model, objective = NoisyMeanLearner(theta), ReverseGradient(reference_draws=3)
    draws = [torch.randn(3, generator=torch.Generator().manual_seed(seed)) for seed in range(5)]
    mean_step = theta - x[0] - torch.stack(draws[:3]).mean(dim=0)
    (reference,) = objective.reference([model], x, torch.tensor([0]))
    assert torch.allclose(reference, mean_step / mean_step.square().sum())
    first, second = (objective.loss([model], x, [reference]).item() for _ in range(2))
    for value, draw in ((first, draws[3]), (second, draws[4])):  # draws 3 and 4: never a reference draw
        assert value == pytest.approx(torch.dot(theta - x[0] - draw, reference).item(), rel=1e-3)


def test_the_reverse_gradient_takes_one_draw_of_a_loss_it_has_seen_draw_nothing(monkeypatch):
    from harmonycloak.optim import gradient_matching

    theta, x = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([[1.0, -2.0, 0.5]])
    steady, noisy = MeanLearner(theta), NoisyMeanLearner(theta)
    read = []
    monkeypatch.setattr(gradient_matching, "training_gradient",
                        lambda model, *args, **kwargs: read.append(model) or training_gradient(model, *args, **kwargs))
    objective = ReverseGradient(reference_draws=3)
    first = objective.reference([steady, noisy], x, torch.tensor([0]))
    assert read == [steady, steady, noisy, noisy, noisy]  # two draws show the steady loss draws nothing
    read.clear()
    second = objective.reference([steady, noisy], x, torch.tensor([0]))
    assert read == [steady, noisy, noisy, noisy]  # the next batch takes its one draw; the noisy loss keeps all three
    clean_step = theta - x[0]
    assert torch.equal(first[0], second[0])
    assert torch.allclose(second[0], clean_step / clean_step.square().sum())
    assert torch.equal(first[1], second[1])  # the same draws, the same mean


class CurvedLearner(nn.Module):
    """A training loss far from quadratic in θ: mean over the batch of Σ (tanh(W v) − v)², W (4, 4)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 4, generator=torch.Generator().manual_seed(3)))

    def training_loss(self, inputs: Tensor, generator) -> Tensor:
        return (torch.tanh(inputs @ self.weight.T) - inputs).square().sum(dim=-1).mean()


def test_the_reverse_gradient_s_central_difference_agrees_with_differentiating_the_parameter_gradient():
    model, objective = CurvedLearner(), ReverseGradient()
    clean = torch.randn(3, 4, generator=torch.Generator().manual_seed(4))
    (reference,) = objective.reference([model], clean, torch.arange(3))
    protected = (clean + 0.1 * torch.randn(3, 4, generator=torch.Generator().manual_seed(5))).requires_grad_(True)
    exact = torch.dot(training_gradient(model, protected, create_graph=True), reference)
    (exact_gradient,) = torch.autograd.grad(exact, protected)
    value = objective.loss([model], protected, [reference])[0]
    (gradient,) = torch.autograd.grad(value, protected)
    assert value.item() == pytest.approx(exact.item(), rel=1e-3)
    assert F.cosine_similarity(gradient.flatten(), exact_gradient.flatten(), dim=0).item() > 0.999
    assert all(p.grad is None for p in model.parameters())  # no parameter gradient was taken


class Counted(nn.Module):
    """A model whose training loss counts how often it is read."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model, self.calls = model, 0

    def training_loss(self, inputs: Tensor, generator) -> Tensor:
        self.calls += 1
        return self.model.training_loss(inputs, generator)


def test_the_codec_lm_s_codec_is_read_once_for_both_passes_and_the_derivative_is_the_same():
    from harmonycloak.models.registry import build_model
    from harmonycloak.optim.gradient_matching import directional_training_gradient

    model = build_model("codec-lm", "tiny", seed=0).eval()
    encoder_reads = []
    model.codec.encoder.register_forward_hook(lambda *_: encoder_reads.append(1))
    clean = 0.1 * torch.randn(2, 2560, generator=torch.Generator().manual_seed(1))
    direction = training_gradient(model, clean, create_graph=False)
    protected = (clean + 0.01 * torch.randn(2, 2560, generator=torch.Generator().manual_seed(2))).requires_grad_(True)

    def derivative(reader: nn.Module) -> tuple[float, Tensor, int]:
        encoder_reads.clear()
        value = directional_training_gradient(reader, protected, direction, draw_seed=0)
        forward_reads = len(encoder_reads)  # the backward pass recomputes the shared front's once more
        (gradient,) = torch.autograd.grad(value, protected)
        return value.item(), gradient, forward_reads

    shared_value, shared_gradient, shared_reads = derivative(model)
    plain_value, plain_gradient, plain_reads = derivative(Counted(model))  # the loss alone: no front to share
    exact = torch.dot(training_gradient(model, protected, create_graph=True), direction)
    assert (shared_reads, plain_reads) == (1, 2)
    assert shared_value == pytest.approx(plain_value, rel=1e-4)
    assert shared_value == pytest.approx(exact.item(), rel=1e-2)
    assert F.cosine_similarity(shared_gradient.flatten(), plain_gradient.flatten(), dim=0).item() > 0.9999


def test_the_reverse_gradient_reads_a_loss_that_draws_nothing_twice_and_one_that_draws_every_time():
    x, theta = torch.tensor([[1.0, -2.0]]), torch.tensor([0.5, 0.5])
    steady, drawing = Counted(MeanLearner(theta)), Counted(NoisyMeanLearner(theta))
    (reference,) = ReverseGradient(reference_draws=4).reference([steady], x, torch.tensor([0]))
    assert steady.calls == 2 and torch.allclose(reference, (theta - x[0]) / (theta - x[0]).square().sum())
    ReverseGradient(reference_draws=4).reference([drawing], x, torch.tensor([0]))
    assert drawing.calls == 4


# --- the loop and the settings ------------------------------------------------------------


class Quadratic(MeanLearner):
    """Generative loss ‖θ − v‖² + 1 per example, trained by the loop's outer step."""

    feature_key = "identity"

    def features(self, inputs):
        return inputs

    def loss_from_features(self, features):
        return (self.theta - features).square().sum(dim=-1) + 1.0

    def training_step(self, inputs, optimiser):
        optimiser.zero_grad()
        self.loss_from_features(inputs).mean().backward()
        optimiser.step()


def test_the_loop_keeps_a_model_s_frozen_part_frozen_after_min_min():
    model = Quadratic(torch.zeros(3))
    run(FreeNoise(torch.ones(2, 3)), [model], ErrorMinimising())
    assert model.theta.requires_grad and not model.frozen_part.requires_grad


def test_error_maximising_noise_steps_away_from_what_the_fine_tuned_model_predicts():
    theta, x = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([[1.0, 1.0, 1.0]])
    model, problem = Quadratic(theta), FreeNoise(x)
    objective = build_objective("maxloss")
    reference = objective.reference([model], x, torch.tensor([0]))
    assert objective.loss([model], x, reference).item() == pytest.approx(1.0)  # L(x) / L(x) at δ = 0
    run(problem, [model], objective)
    # The outer step fine-tunes θ toward x first (one SGD step of 0.025 on ‖θ − x‖²), as an attacker would ...
    assert torch.allclose(model.theta.detach(), theta - 0.025 * 2 * (theta - x[0]))
    # ... then ∂[L(x)/L(x+δ)]/∂δ = L(x)/L² · 2(θ' − x − δ): the step −STEP·sign of it moves x + δ away from θ'.
    assert torch.equal(problem.parameter.detach()[0], -STEP * torch.sign(model.theta.detach() - x[0]))
    reference_after = objective.reference([model], x, torch.tensor([0]))
    assert objective.loss([model], x + problem.parameter.detach(), reference_after).item() < 1.0


def test_every_named_objective_is_built_and_an_unknown_one_is_refused():
    assert [build_objective(name).name for name in OBJECTIVES] == list(OBJECTIVES)
    with pytest.raises(SettingsError, match="objective"):
        build_objective("louder")
    with pytest.raises(SettingsError, match="objective"):
        ProtectionSettings(objective="louder")


def test_what_is_left_open_is_filled_in_by_the_file_s_kind_and_the_objective_s_measured_effort():
    audio, midi = ProtectionSettings().resolved("audio"), ProtectionSettings().resolved("midi")
    assert (audio.cloak, audio.bound_rule, audio.objective, audio.pgd_steps, audio.max_rounds) == (
        "masked-gain", "band-pool", "reverse-gradient", 6, 1)
    assert (midi.cloak, midi.objective, midi.pgd_steps, midi.max_rounds) == ("dominant", "minmin", 20, 3)
    named = ProtectionSettings(cloak="dominant", objective="maxloss", max_rounds=2).resolved("audio")
    assert (named.cloak, named.objective, named.pgd_steps, named.max_rounds) == ("dominant", "maxloss", 20, 2)
    assert named.resolved("audio") == named  # filling in twice changes nothing


def test_white_box_against_a_zoo_model_by_its_name_reads_the_committed_weights():
    from pathlib import Path

    from harmonycloak.flows.audio.protect import build_surrogates
    from harmonycloak.zoo import load_zoo_model

    settings = ProtectionSettings(mode="whitebox", model_checkpoint=Path("zoo:ar-gru"), objective="reverse-gradient")
    (model,) = build_surrogates(settings, torch.device("cpu"))
    pretrained = load_zoo_model("ar-gru")
    assert model.family == "ar-gru"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), pretrained.state_dict().values()))
    with pytest.raises(ModelError, match="no zoo weights named 'ar-lstm'"):
        build_surrogates(ProtectionSettings(mode="whitebox", model_checkpoint=Path("zoo:ar-lstm")), torch.device("cpu"))


def test_black_box_surrogates_follow_the_objective_and_the_surrogates_setting():
    from harmonycloak.flows.audio.protect import build_surrogates
    from harmonycloak.settings import ZOO_SURROGATES
    from harmonycloak.zoo import load_zoo_model

    cpu = torch.device("cpu")
    assert build_surrogates(ProtectionSettings(objective="future-cue"), cpu) == []
    assert [m.family for m in build_surrogates(ProtectionSettings(objective="embedding-shift"), cpu)] == ["contrastive"]
    default = ("ar-transformer", "ar-gru", "ar-tcn", "codec-lm")  # the zoo's next-frame models and its codec LM
    assert tuple(m.family for m in build_surrogates(ProtectionSettings(), cpu)) == default
    zoo = build_surrogates(ProtectionSettings(objective="minmin", surrogates="zoo"), cpu)
    assert [m.family for m in zoo] == list(ZOO_SURROGATES["minmin"])
    pretrained = load_zoo_model(ZOO_SURROGATES["minmin"][0])
    assert all(torch.equal(a, b) for a, b in zip(zoo[0].state_dict().values(), pretrained.state_dict().values()))
    random_bag = build_surrogates(ProtectionSettings(objective="minmin", bag_size=3, model_preset="tiny"), cpu)
    assert len(random_bag) == 3
    with pytest.raises(SettingsError, match="surrogates"):
        ProtectionSettings(surrogates="mine")


def test_the_zoo_models_named_are_the_ones_read_and_only_audio_ones_are_taken():
    from pathlib import Path

    from harmonycloak.flows.audio.protect import build_surrogates
    from harmonycloak.zoo import load_zoo_model

    cpu = torch.device("cpu")
    named = ("ar-transformer", "codec-lm")
    read = build_surrogates(ProtectionSettings(zoo_models=named), cpu)  # the default objective, reverse-gradient
    assert [m.family for m in read] == list(named)
    assert all(torch.equal(a, b) for a, b in zip(read[1].state_dict().values(),
                                                 load_zoo_model("codec-lm").state_dict().values()))
    with pytest.raises(ModelError, match="'musegan' is not an audio model"):
        build_surrogates(ProtectionSettings(zoo_models=("ar-gru", "musegan")), cpu)
    with pytest.raises(ModelError, match="no zoo weights named 'ar-lstm'"):
        build_surrogates(ProtectionSettings(zoo_models=("ar-lstm",)), cpu)
    for bad in ("codec-lm", (), ("codec-lm", "")):
        with pytest.raises(SettingsError, match="zoo models"):
            ProtectionSettings(zoo_models=bad)
    with pytest.raises(SettingsError, match="white-box"):
        ProtectionSettings(mode="whitebox", model_checkpoint=Path("zoo:ar-gru"), zoo_models=named)
