"""What the noise is optimised for: the `Objective` interface, the paper's error-minimising
objective, and the losses it is built from.

The one optimiser loop (`optim.minmin.optimise_noise`) steps the cloak's parameters down the
signed gradient of `objective.loss(models, x + δ, reference) + α · R(δ, x)` for every batch;
an objective says what it wants of x + δ, and whether the models learn the protected data
between rounds (the outer step of min-min). Objectives:

  minmin             the paper's error-minimising noise (this module)
  maxloss            error-maximising noise against models fine-tuned on it between rounds (this module)
  future-cue         noise whose energy in frame t announces frame t + 1 (`optim.future_cue`)
  embedding-shift    an encoder reads x + δ as a decoy style (`optim.embedding_shift`)
  gradient-matching  a training step on x + δ moves the models toward a decoy (`optim.gradient_matching`)
  reverse-gradient   a training step on x + δ does not teach the models x (`optim.gradient_matching`)

Models are `models.interface.GenerativeModel`s: a front end (`features`), a generative loss
per example on the features, and `predict` (what the model outputs and what it should).
Every objective's loss is dimensionless and reads 1 (or 0 for the cue) on the clean music,
so one α balances each of them against the noise's power.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.settings import OBJECTIVES


class Objective(Protocol):
    """What the noise should do to the models (or to the music) that the loop minimises."""

    name: str
    trains_models: bool  # the models learn the protected data between rounds (min-min's outer step)
    needs_models: bool  # False: the loss reads the music alone (the loop may be handed no models)
    meta_test: bool  # black-box: the paper's meta-test step on the last sampled model follows
    reads_model_gradients: bool  # the loss differentiates the models' parameters (they stay unfrozen)

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> Any:
        """What the loss compares against for these segments, computed once per batch without gradients.

        Shapes: clean is the models' input of the clean music, (B, ...); segment_ids (B,)."""

    def loss(self, models: Sequence[GenerativeModel], protected: Tensor, reference: Any) -> Tensor:
        """The loss to minimise over δ, per example (B,), differentiable in `protected` (B, ...).

        An objective whose loss is a sum of one term per model may also say so with
        `model_terms(models, protected, reference)`, an iterator of those terms (each (B,)): the
        loop then differentiates one model's term at a time and frees its graph before reading
        the next model (`optim.minmin`), so a step holds one model's graph, not the bag's."""


class ErrorMinimising:
    """The paper's objective: Σ_q L_q(x + δ) / L_q(x) over the sampled models (Eq. 1, 8).

    Each model's loss is divided by its loss on the clean segment (a positive constant, so
    the minimiser is unchanged and every term reads 1 at δ = 0). In black-box mode the sum
    over the Q − 1 meta-train models is divided by Q, as Eq. 9 prints it.
    """

    name = "minmin"
    trains_models = True
    needs_models = True
    reads_model_gradients = False

    def __init__(self, blackbox: bool = False) -> None:
        self.meta_test = blackbox

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.stack(generative_losses(models, clean)).clamp(min=1e-12)  # (M, B)

    def loss(self, models: Sequence[GenerativeModel], protected: Tensor, reference: Tensor) -> Tensor:
        losses = torch.stack(generative_losses(models, protected))  # (M, B)
        scale = 1.0 / (len(models) + 1) if self.meta_test else 1.0
        return scale * (losses / reference).sum(dim=0)


class ErrorMaximising:
    """The models' loss on x + δ goes *up*: Σ_q L_q(x) / L_q(x + δ) over the models, per example.

    The style-mimicry answer of image protection (alternating surrogate learning): the
    models are fine-tuned on the protected data between rounds, as an attacker
    would, and the noise keeps what they find hardest in it. A fine-tune on x + δ then spends
    its steps on the noise's errors instead of on the music. Each term reads 1 at δ = 0 and
    falls as the loss rises; the quotient keeps it bounded below by 0. No meta-test step: the
    black-box divergence step makes the output *match* the clean music, the opposite aim.
    """

    name = "maxloss"
    trains_models = True
    needs_models = True
    meta_test = False
    reads_model_gradients = False

    def reference(self, models: Sequence[GenerativeModel], clean: Tensor, segment_ids: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.stack(generative_losses(models, clean))  # (M, B)

    def loss(self, models: Sequence[GenerativeModel], protected: Tensor, reference: Tensor) -> Tensor:
        losses = torch.stack(generative_losses(models, protected)).clamp(min=1e-12)  # (M, B)
        return (reference / losses).mean(dim=0)


def build_objective(name: str, mode: str = "blackbox", seed: int = 0) -> Objective:
    """The objective `name` (one of OBJECTIVES); `seed` keys what an objective draws (cue keys, decoys)."""
    if name == "minmin":
        return ErrorMinimising(blackbox=mode == "blackbox")
    if name == "maxloss":
        return ErrorMaximising()
    if name == "future-cue":
        from harmonycloak.optim.future_cue import FutureCue

        return FutureCue(seed=seed)
    if name == "embedding-shift":
        from harmonycloak.optim.embedding_shift import EmbeddingShift

        return EmbeddingShift(seed=seed)
    if name == "gradient-matching":
        from harmonycloak.optim.gradient_matching import GradientMatching

        return GradientMatching()
    if name == "reverse-gradient":
        from harmonycloak.optim.gradient_matching import ReverseGradient

        return ReverseGradient()
    raise SettingsError(f"objective must be one of {', '.join(OBJECTIVES)}, not '{name}'")


def generative_losses(models: Sequence[GenerativeModel], inputs: Tensor) -> list[Tensor]:
    """L_gen of each model on `inputs`, each (B,); models with one front end share one pass."""
    features: dict[object, Tensor] = {}
    losses = []
    for model in models:
        if model.feature_key not in features:
            features[model.feature_key] = model.features(inputs)
        losses.append(model.loss_from_features(features[model.feature_key]))
    return losses


def output_divergence(model: GenerativeModel, protected_inputs: Tensor, clean_inputs: Tensor, eps: float = 1e-4) -> Tensor:
    """Divergence loss of the black-box meta-test step (paper §4.2), per example (B,).

    The paper measures "the disparity between the distribution of the target model's output
    and the distribution of the clean music" without defining it. Here it is exactly:

        D = mean over feature dims f of KL( N(mu_p[f], var_p[f]) || N(mu_c[f], var_c[f]) )

    where (mu_p, var_p) are the mean and variance over time of the model's *predictions* when
    it reads the protected music, and (mu_c, var_c) those of the *clean* music's own next
    frames (the targets the model should reach), both in the model's feature space. The KL of
    two Gaussians is log(s_c / s_p) + (var_p + (mu_p - mu_c)^2) / (2 var_c) - 1/2.

    Only the model's outputs enter, never its loss: the meta-test model stands for a target
    whose training loss the defender cannot read. Minimising D over the noise makes what the
    model already predicts from the protected music match the clean music's statistics, i.e.
    the song looks already learned: nothing is left to learn from it.

    Shapes: protected_inputs and clean_inputs are what the model reads, (B, ...); the model's
    predictions and targets are (B, T, F); the result is (B,).
    """
    prediction, _ = model.predict(model.features(protected_inputs))
    with torch.no_grad():
        _, clean_target = model.predict(model.features(clean_inputs))
    mean_p, var_p = prediction.mean(dim=1), prediction.var(dim=1, unbiased=False) + eps
    mean_c, var_c = clean_target.mean(dim=1), clean_target.var(dim=1, unbiased=False) + eps
    kl = 0.5 * (var_c / var_p).log() + (var_p + (mean_p - mean_c).square()) / (2 * var_c) - 0.5
    return kl.mean(dim=-1)
