"""Unlearning: each method moves a model with a known answer the way its formula says, the ascent
never reads the retained songs, the forgetting arithmetic follows its formula on hand-made
losses, and the benchmark runs end to end."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from harmonycloak.bench.unlearnability.headline import build_headline
from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
from harmonycloak.bench.unlearnability.threats import AttackerRun
from harmonycloak.bench.unlearning.losses import example_losses, output_distance
from harmonycloak.bench.unlearning.methods import METHODS, UnlearningRecipe, forget_term, unlearn, unlearning_loss
from harmonycloak.bench.unlearning.report import (
    forgetting_interval,
    headline_threat_models,
    relative_change_interval,
    score_table,
    verdicts,
)
from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeTraining
from harmonycloak.settings import WORKING_RATE_HZ

LEVEL = 0.5  # c: every sample of the toy songs is ±c
CROP_SAMPLES = 16


class NextSamplePredictor(GenerativeTraining, nn.Module):
    """The linear model x̂_{n+1} = a·x_n, its loss the mean squared error over a crop (a unit-variance
    Gaussian's NLL up to constants): a next-frame model with one weight and one-sample frames."""

    family = "toy-linear"
    kind = "audio"
    sample_rate_hz = WORKING_RATE_HZ

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.seen: list[tuple[str, torch.Tensor]] = []  # (which call, its inputs), for the spy tests
        self.loss_weights: list[tuple[bool, float]] = []  # (a crop of song A?, d objective / d that loss)

    def features(self, waveform):  # (B, L) → (B, L, 1)
        return waveform[..., None]

    def predict(self, frames):  # (B, L, 1) → (a·x_n, x_{n+1}), both (B, L − 1, 1)
        self.seen.append(("predict", frames.detach()))
        return self.a * frames[:, :-1], frames[:, 1:]

    def generative_loss(self, waveform):  # (B,)
        self.seen.append(("loss", waveform.detach()))
        prediction, target = (self.a * waveform[:, :-1], waveform[:, 1:])
        losses = (prediction - target).square().mean(dim=1)
        if losses.requires_grad:
            is_forget = bool(torch.all(waveform[:, 1:] == -waveform[:, :-1]))
            losses.register_hook(lambda grad: self.loss_weights.append((is_forget, float(grad.sum()))))
        return losses


def alternating(length: int = 64) -> np.ndarray:
    """Song A (to forget): +c, −c, +c, ...: x_{n+1} = −x_n, best predicted by a = −1."""
    return (LEVEL * (-1.0) ** np.arange(length)).astype(np.float32)


def constant(length: int = 64) -> np.ndarray:
    """Song B (to retain): c, c, c, ...: x_{n+1} = x_n, best predicted by a = 1."""
    return np.full(length, LEVEL, np.float32)


# Trained on both songs, least squares gives a = Σ x_n x_{n+1} / Σ x_n² = 0; retrained on B alone, a = 1.
ORIGINAL_A, RETRAINED_A = 0.0, 1.0


def recipe(**changes) -> UnlearningRecipe:
    values = dict(steps=1, learning_rate=1e-2, batch_segments=2, segment_s=CROP_SAMPLES / WORKING_RATE_HZ)
    values.update(changes)
    return UnlearningRecipe(**values)


def crops(song: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([song[:CROP_SAMPLES], song[1 : CROP_SAMPLES + 1]]))


def objective_gradient(method: str, a: float, weight: float = 2.0, beta: float = 10.0) -> float:
    model, original = NextSamplePredictor(a), NextSamplePredictor(ORIGINAL_A)
    loss = unlearning_loss(method, model, original, crops(alternating()), crops(constant()),
                           torch.Generator().manual_seed(0), recipe(retain_weight=weight, npo_beta=beta))
    loss.backward()
    return float(model.a.grad)


def test_each_method_s_gradient_is_its_formula_on_the_linear_model():
    # ℓ_A(a) = c²(1 + a)², ℓ_B(a) = c²(1 − a)², D(a, a₀) = c²(a − a₀)², by hand from the songs
    a, weight, beta, c2 = 0.3, 2.0, 10.0, LEVEL**2
    ascent = -2 * c2 * (1 + a)
    assert objective_gradient("gradient-ascent", a) == pytest.approx(ascent, rel=1e-5)
    assert objective_gradient("ascent-descent", a) == pytest.approx(ascent + weight * (-2 * c2 * (1 - a)), rel=1e-5)
    assert objective_gradient("ascent-kl", a) == pytest.approx(ascent + weight * 2 * c2 * (a - ORIGINAL_A), rel=1e-5)
    # NPO: gradient ascent's, weighted by w = 2σ(−β r), r = (ℓ_θ − ℓ₀)/ℓ₀ = (1 + a)² − 1 (ℓ₀ = c² at a₀ = 0)
    r = (1 + a) ** 2 - 1
    w = 2 / (1 + math.exp(beta * r))
    assert objective_gradient("npo", a, beta=beta) == pytest.approx(w * ascent, rel=1e-5)
    # ... and at the original weights NPO is gradient ascent exactly (w = 1)
    assert objective_gradient("npo", ORIGINAL_A) == pytest.approx(objective_gradient("gradient-ascent", ORIGINAL_A))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_moves_the_two_song_model_toward_the_retrained_answer(method):
    model = NextSamplePredictor(ORIGINAL_A)
    unlearn(method, model, [alternating()], [constant()], recipe(steps=5), seed=0)
    # Adam's first steps move a weight by about the learning rate each, in the direction of −gradient
    assert ORIGINAL_A < model.a.item() < RETRAINED_A
    assert model.a.item() == pytest.approx(5e-2, rel=0.05)


def test_long_runs_settle_where_each_objective_is_flat():
    weight = 3.0
    settled = {}
    for method in ("ascent-descent", "ascent-kl", "retain-finetune", "gradient-ascent", "npo"):
        model = NextSamplePredictor(ORIGINAL_A)
        unlearn(method, model, [alternating()], [constant()], recipe(steps=800, retain_weight=weight), seed=0)
        settled[method] = model.a.item()
    # −(1 + a) − λ(1 − a) = 0 → a = (1 + λ)/(λ − 1); −(1 + a) + λ(a − a₀) = 0 → a = (1 + λ a₀)/(λ − 1)
    assert settled["ascent-descent"] == pytest.approx((1 + weight) / (weight - 1), abs=0.05)
    assert settled["ascent-kl"] == pytest.approx(1 / (weight - 1), abs=0.05)
    assert settled["retain-finetune"] == pytest.approx(RETRAINED_A, abs=0.05)  # least squares on B alone
    # ascent is unbounded (its gradient never vanishes) and runs ~lr per step; NPO's weight falls and it slows
    assert settled["gradient-ascent"] > 6.0
    assert settled["npo"] < settled["gradient-ascent"] - 2.0


@pytest.mark.parametrize("method", ("gradient-ascent", "npo", "ascent-descent", "ascent-kl"))
def test_the_ascent_reads_forget_batches_only(method):
    """Every loss that receives an ascent gradient (negative weight) was computed on a crop of the
    song to forget; the retained song enters only through the retain term, and not at all without one."""
    model = NextSamplePredictor(ORIGINAL_A)
    unlearn(method, model, [alternating()], [constant()], recipe(steps=3), seed=0)
    weights = model.loss_weights
    assert weights and all(is_forget for is_forget, grad in weights if grad < 0)
    if method == "ascent-descent":
        assert any(not is_forget and grad > 0 for is_forget, grad in weights)
    else:  # no descent term: the retained song never reaches the loss ...
        assert all(is_forget for is_forget, _ in weights)
    retained = [x for call, x in model.seen if call == "predict"]
    if method == "ascent-kl":  # ... and the KL term reads only retained crops (constant ones)
        assert retained and all(torch.all(x[:, 1:] == x[:, :-1]) for x in retained)
    else:
        assert not retained


def test_forget_term_refuses_methods_without_an_ascent():
    model = NextSamplePredictor(ORIGINAL_A)
    with pytest.raises(SettingsError):
        forget_term("retain-finetune", model, model, crops(alternating()), torch.Generator(), 10.0)
    with pytest.raises(SettingsError):
        unlearn("ascent-descent", model, [alternating()], [], recipe(), seed=0)


@pytest.mark.parametrize("family", ("codec-lm", "mel-diffusion", "ar-gru"))
def test_output_distance_is_zero_to_itself_and_grows_with_a_change(family):
    from harmonycloak.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(family, "tiny", seed=0)
    inputs = 0.1 * torch.randn(2, 2560)
    assert output_distance(model, copy.deepcopy(model), inputs, torch.Generator().manual_seed(1)).item() == \
        pytest.approx(0.0, abs=1e-7)
    changed = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in changed.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    assert output_distance(model, changed, inputs, torch.Generator().manual_seed(1)).item() > 1e-6
    # equal generator states give equal per-example losses (the diffusion draws): NPO compares like with like
    first = example_losses(model, inputs, torch.Generator().manual_seed(3))
    assert first.shape == (2,) and torch.equal(first, example_losses(model, inputs, torch.Generator().manual_seed(3)))


def seed_result(seed: int, per_condition: dict[str, dict[str, list[float]]]) -> ThreatSeedResult:
    result = ThreatSeedResult(seed, ["a", "b"], [], 0.15)
    for condition, probes in per_condition.items():
        result.runs.append(AttackerRun("mimicry", "ar-transformer", condition, seed, probes, [], 10.0))
    return result


def test_forgetting_arithmetic_follows_its_formula_on_hand_made_losses():
    def probes(forget, retain, relearned=None):
        values = {"forget": forget, "retain": retain, "heldout": retain, "unreleased": forget}
        if relearned is not None:
            values["forget@relearned"] = relearned
        return values

    results = [seed_result(seed, {
        "original": probes([1.0, 2.0], [1.0, 1.0], [1.0, 2.0]),
        "retrain": probes([1.5, 3.0], [1.0, 1.0], [1.5, 3.0]),
        "gradient-ascent": probes([1.25, 2.5], [1.1, 1.1], [1.0, 2.0]),  # halfway; everything comes back
        "npo": probes([2.5, 5.0], [2.0, 2.0], [2.5, 5.0]),  # three times as far as retraining
        "masked-cue": probes([1.0, 2.0], [1.0, 1.0]),  # the cloak changed nothing
    }) for seed in range(3)]
    # PS = (m(after) − m(before)) / (m(retrained) − m(before)) = (1.875 − 1.5) / (2.25 − 1.5) = 0.5
    interval = forgetting_interval(results, "mimicry", "ar-transformer", "gradient-ascent")
    assert interval.ps == pytest.approx(0.5) and interval.low == pytest.approx(0.5) and interval.high == pytest.approx(0.5)
    assert forgetting_interval(results, "mimicry", "ar-transformer", "npo").ps == pytest.approx(3.0)
    relearned = forgetting_interval(results, "mimicry", "ar-transformer", "gradient-ascent", "forget",
                                    "forget@relearned")
    assert relearned.ps == pytest.approx(0.0)
    change = relative_change_interval(np.full((3, 2), 1.1), np.ones((3, 2)))
    assert change.ps == pytest.approx(0.1)

    class Suite:
        threat_models, methods, cloaks, relearn_steps = ("mimicry",), ("gradient-ascent", "npo"), ("masked-cue",), 5

        @staticmethod
        def families_for(threat):
            return ("ar-transformer",)

    table = score_table(results, Suite)
    scores = table["mimicry"]["ar-transformer"]
    assert scores["retrain"].forget.ps == pytest.approx(1.0) and scores["masked-cue"].forget.ps == pytest.approx(0.0)
    assert scores["gradient-ascent"].retain_change.ps == pytest.approx(0.1)
    assert scores["gradient-ascent"].gap == pytest.approx(0.5)  # (L_retrained − L_before) / L_before per seed
    assert scores["masked-cue"].relearned is None
    lines = verdicts(table, 5)
    assert any("over-forgetting" in line and "npo" in line and "gradient-ascent" not in line for line in lines)
    assert any("Closest to retraining: gradient-ascent" in line for line in lines)
    headline = build_headline("test", "abc", headline_threat_models(table))
    assert headline["threat_models"]["mimicry"]["ar-transformer"]["gradient-ascent"]["ps"] == pytest.approx(0.5)


@pytest.mark.slow
def test_the_smoke_suite_runs_end_to_end(tmp_path):
    import json

    from harmonycloak.cli import main

    assert main(["bench", "unlearning", "--suite", "smoke", "--out", str(tmp_path)]) == 0
    headline = json.loads((tmp_path / "unlearning-headline.json").read_text())
    for threat in ("scratch", "mimicry"):
        for family in ("ar-transformer", "codec-lm", "mel-diffusion"):
            assert set(headline["threat_models"][threat][family]) == {"retrain", *METHODS, "default",
                                                                      "dominant-blackbox"}
    report = (tmp_path / "unlearning.md").read_text()
    assert "`default` is what `protect` does to audio when asked nothing (the masked-gain cloak" in report
    assert "| mel-diffusion |" in report and "PS after relearning" in report
    runs = json.loads((tmp_path / "unlearning-results.json").read_text())["seed_results"][0]["runs"]
    cloaks = ("default", "dominant-blackbox")  # the attacker trained on cloaked songs: nothing to relearn
    assert all(("forget@relearned" in run["song_losses"]) == (run["condition"] not in cloaks) for run in runs)
    # the report is a function of the results file alone
    from harmonycloak.bench.unlearning.benchmark import report_from_results

    report_from_results(tmp_path / "unlearning-results.json", tmp_path / "again")
    assert (tmp_path / "again" / "unlearning.md").read_text() == report


def test_unknown_methods_and_families_are_refused_before_anything_runs(tmp_path, capsys):
    from harmonycloak.cli import main

    assert main(["bench", "unlearning", "--methods", "forget-harder", "--out", str(tmp_path)]) == 2  # a settings error
    assert "forget-harder" in capsys.readouterr().err
    assert main(["bench", "unlearning", "--families", "contrastive", "--out", str(tmp_path)]) == 2
    assert "no per-song likelihood" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("family", ("ar-transformer", "mel-diffusion"))
def test_generated_music_is_seeded_and_its_fd_is_a_distance(family):
    from harmonycloak.bench.generated import GeneratedSpec, generated_fd, generated_frames
    from harmonycloak.zoo import load_zoo_model

    model, encoder = load_zoo_model(family), load_zoo_model("contrastive")
    songs = [np.sin(2 * np.pi * f * np.arange(16_000) / WORKING_RATE_HZ).astype(np.float32) * 0.3 for f in (220, 330)]
    spec = GeneratedSpec(clips=3, generated_s=0.64, window_s=0.32, diffusion_steps=2)
    frames = generated_frames(model, songs, spec, torch.Generator().manual_seed(0))
    assert frames.shape == (3, 64, 64)  # 0.64 s of 10 ms frames (a multiple of the U-Net's), 64 mel bands
    assert torch.equal(frames, generated_frames(model, songs, spec, torch.Generator().manual_seed(0)))
    distance = generated_fd(model, encoder, songs, spec, seed=0)
    assert distance > 0 and distance == generated_fd(model, encoder, songs, spec, seed=0)


def test_a_family_without_a_sampler_here_has_no_fd():
    from harmonycloak.bench.generated import GeneratedSpec, generated_fd
    from harmonycloak.models.registry import build_model

    assert generated_fd(build_model("codec-lm", "tiny", seed=0), None, [], GeneratedSpec(), seed=0) is None


def test_the_report_says_what_protect_s_default_is_only_where_the_suite_cloaks_with_it():
    from dataclasses import replace

    from harmonycloak.bench.unlearning.benchmark import _setting
    from harmonycloak.bench.unlearning.suites import get_unlearning_suite

    suite = get_unlearning_suite("smoke")
    data = {name: ["a"] * 2 for name in ("forget", "retain_mimicry", "corpus", "unreleased", "heldout")}
    cloaks = next(line for line in _setting(suite, data) if line.startswith("- Cloaks"))
    assert cloaks.startswith("- Cloaks: `default`, `dominant-blackbox`, released by the threat benchmark's code at "
                             "medium strength: `default` is what `protect` does to audio when asked nothing (the "
                             "masked-gain cloak, objective reverse-gradient, at its own effort: 6 PGD steps, 1 round)")
    alone = next(line for line in _setting(replace(suite, cloaks=("masked-cue",)), data) if line.startswith("- Cloaks"))
    assert alone.startswith("- Cloaks: `masked-cue`, released by the threat benchmark's code at medium strength at "
                            "the benchmark's effort (2 PGD steps") and "protect" not in alone


def test_the_relearning_attack_trains_a_codec_lm_on_its_frame_grid_and_other_models_anywhere(monkeypatch):
    import harmonycloak.bench.unlearning.experiment as experiment
    from harmonycloak.bench.unlearning.suites import get_unlearning_suite
    from harmonycloak.zoo import load_zoo_model

    used = []
    monkeypatch.setattr(experiment, "finetune", lambda model, songs, recipe, seed: used.append(recipe))
    monkeypatch.setattr(experiment, "song_losses", lambda *args, **kwargs: [])
    song = np.zeros(WORKING_RATE_HZ, np.float32)
    for family in ("codec-lm", "ar-gru"):
        experiment.relearned_losses(load_zoo_model(family), [song], [song], get_unlearning_suite("standard"), "mimicry", 0)
    assert [recipe.crop_grid_samples for recipe in used] == [320, 1]
    assert not any(recipe.augment_gain or recipe.augment_speed for recipe in used)  # relearning never augments
    # the owner's unlearning crops the same grid (`run_unlearning_seed` gives each model its own)
    assert UnlearningRecipe(crop_grid_samples=experiment.crop_grid_samples(load_zoo_model("codec-lm"))).crops() \
        .crop_grid_samples == 320
