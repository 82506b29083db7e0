"""The optimiser's objective pinned on problems whose answer is known by hand.

A linear model L(x) = c·x + b (per example) and noise δ = p (or δ = B·tanh(p)) make every
gradient a number one can write down: the generative term contributes scale · c / L(x_clean)
per model, the regulariser α · 2δ / ‖x‖² (the noise-to-music power ratio). Each test below
is chosen so that the sign of the step flips when the term it guards is left out.
"""

import math

import torch
from torch import Tensor, nn

from harmonycloak.cloak.problem import MUSIC_NORM_FLOOR, noise_power_ratio
from harmonycloak.optim.minmin import MinMinConfig, optimise_noise


class LinearModel(nn.Module):
    """L(x) = x · slope + offset per example; `predict` ignores its input (a meta-test model
    whose divergence has no gradient, so that only the meta-train step and the regulariser move δ)."""

    family, kind = "linear", "audio"
    feature_key = "identity"

    def __init__(self, slope: Tensor, offset: float):
        super().__init__()
        self.slope, self.offset = slope, offset
        self.anchor = nn.Parameter(torch.zeros(1))  # the outer SGD step needs a parameter; it never moves

    def features(self, inputs: Tensor) -> Tensor:
        return inputs

    def loss_from_features(self, features: Tensor) -> Tensor:
        return features @ self.slope + self.offset

    def generative_loss(self, inputs: Tensor) -> Tensor:
        return self.loss_from_features(inputs)

    def predict(self, features: Tensor) -> tuple[Tensor, Tensor]:
        constant = torch.linspace(0.0, 1.0, 4).reshape(1, 4, 1).expand(features.shape[0], 4, 1)
        return constant, constant + 1.0

    def training_step(self, inputs: Tensor, optimiser) -> float:
        return 0.0  # the model stays as it is: only δ moves


class DirectNoise:
    """One segment of clean music x (D,); δ = bound · tanh(p), or δ = p when bound is None."""

    def __init__(self, clean: Tensor, start: Tensor, bound: float | None = None):
        self.clean = clean[None]
        self.bound = bound
        self.parameter = start.clone()[None].requires_grad_(True)

    num_segments = 1

    def noise(self) -> Tensor:
        return self.parameter if self.bound is None else self.bound * torch.tanh(self.parameter)

    def noise_parameters(self):
        return [self.parameter]

    def clean_batch(self, ids):
        return self.clean[ids]

    def protected_batch(self, ids):
        noise, clean = self.noise()[ids], self.clean[ids]
        return clean + noise, noise_power_ratio(noise, clean, (-1,), MUSIC_NORM_FLOOR)


STEP = 0.25


def run(problem: DirectNoise, models: list[nn.Module], mode: str, alpha: float, pgd_steps: int = 1) -> Tensor:
    config = MinMinConfig(mode=mode, pgd_steps=pgd_steps, pgd_step_size=STEP, meta_test_steps=1, alpha=alpha,
                          max_rounds=1, models_per_round=len(models), batch_segments=1)
    optimise_noise(problem, models, config, torch.Generator().manual_seed(0))
    return problem.parameter.detach()[0]


def test_a_linear_loss_gives_the_known_signed_descent_step():
    slope = torch.tensor([2.0, -0.5, 0.0, -3.0])
    problem = DirectNoise(torch.ones(4), torch.zeros(4))
    after = run(problem, [LinearModel(slope, 10.0)], "whitebox", alpha=0.0)
    # δ ← δ − step · sign(∂L/∂δ) = −step · sign(slope); a zero gradient leaves its entry alone
    assert torch.equal(after, -STEP * torch.sign(slope))


def test_alpha_zero_drives_the_noise_to_its_bound_and_a_large_alpha_keeps_it_at_its_start():
    slope, bound = torch.tensor([1.0, -1.0, 2.0]), 0.05
    free = DirectNoise(torch.ones(3), torch.zeros(3), bound=bound)
    run(free, [LinearModel(slope, 10.0)], "whitebox", alpha=0.0, pgd_steps=40)
    assert torch.allclose(free.noise().detach()[0], -bound * torch.sign(slope), atol=1e-6)

    held = DirectNoise(torch.ones(3), torch.zeros(3), bound=bound)
    run(held, [LinearModel(slope, 10.0)], "whitebox", alpha=1e6, pgd_steps=40)
    # every step away from 0 is undone by the next: the noise never leaves one step of its start
    assert held.parameter.detach().abs().max() <= STEP


def test_the_clean_loss_normalisation_sets_the_balance_with_the_regulariser():
    # One model, L = 99 at the clean x = 1 (slope −1, offset 100), δ₀ = 1, α = 0.2:
    # ∂/∂δ [L(x+δ)/L(x) + α δ²/x²] = −1/99 + 0.4 > 0, so δ steps down; without the division by
    # L(x) the gradient would be −1 + 0.4 < 0 and δ would step up.
    problem = DirectNoise(torch.ones(1), torch.ones(1))
    after = run(problem, [LinearModel(torch.tensor([-1.0]), 100.0)], "whitebox", alpha=0.2)
    assert math.isclose(after.item(), 1.0 - STEP)


def test_eq_9_scales_the_meta_train_gradients_by_one_over_q():
    # Black-box, Q = 7 sampled models: 6 meta-train ones, each L = 9 at x = 1 (slope −1, offset 10).
    # Meta-train gradient at δ₀ = 1: (1/7) · 6 · (−1/9) + 0.2 · 2 = 0.305 > 0 → δ steps down; without
    # the 1/Q it is 6 · (−1/9) + 0.4 = −0.267 < 0 → δ would step up. The meta-test step then sees
    # only the regulariser (its model's output ignores δ) and steps δ down once more.
    problem = DirectNoise(torch.ones(1), torch.ones(1))
    models = [LinearModel(torch.tensor([-1.0]), 10.0) for _ in range(7)]
    after = run(problem, models, "blackbox", alpha=0.2)
    assert math.isclose(after.item(), 1.0 - 2 * STEP)
