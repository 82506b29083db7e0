"""Unlearning methods: make a trained model forget some songs (the forget set F) and keep the rest
(the retain set R), each as the unlearning literature applies it to generative models.

With ℓ_θ(x) the per-example loss (`losses.example_losses`), θ₀ the original model, D the
output distance to it (`losses.output_distance`), λ `UnlearningRecipe.retain_weight`, every
method but `retain-finetune` minimises, over batches f of F and r of R:

  gradient-ascent   −mean ℓ_θ(f)                                    (Jang et al. 2023)
  ascent-descent    −mean ℓ_θ(f) + λ mean ℓ_θ(r)   "gradient difference" (Liu et al. 2022)
  ascent-kl         −mean ℓ_θ(f) + λ D(θ, θ₀; r)                   (Yao et al. 2023; for the
                    next-frame models D is the mean squared distance of their predictions)
  npo               ℓ̄ · mean −(2/β) log σ(β (ℓ_θ(f) − ℓ₀(f)) / ℓ̄)  negative preference
                    optimisation (Zhang et al. 2024), forget term only
  retain-finetune   no ascent: the attacker's fine-tuning loop (`optim.finetune`) on R alone

and the gold standard, retraining without F (T1: from scratch on R; T2: the base fine-tuned
on R), is the threat benchmark's attacker trained on R (`experiment`).

NPO. Its loss is −(2/β) log σ(−β log(π_θ(y)/π_ref(y))) per forget example. Our models' losses
are negative log-likelihoods up to constants and scale: log π_θ − log π_ref = c (ℓ_ref − ℓ_θ)
with c = n/2 for a Gaussian over n values (next-frame, diffusion) and n for n codes. c grows
with the clip length, which would make β mean something else for every family and crop. We
express the ratio relative to the reference's mean loss on the batch, ℓ̄ = mean ℓ₀(f)
(detached): log(π_θ/π_ref) := (ℓ₀ − ℓ_θ) / ℓ̄, and scale the loss by ℓ̄. Then β is
dimensionless, and the gradient is gradient ascent's weighted per example by
w = 2 σ(−β (ℓ_θ − ℓ₀)/ℓ̄): 1 at the start (NPO begins as gradient ascent, as in the paper),
about ½ once the loss is 1/β above the reference (β = 10: 10 %), falling to 0 after, so NPO
slows down where retraining would land (the seen/unseen gaps here are 5–15 %), while plain
ascent runs on.

Separation. The ascent term reads forget batches only and the retain term retain batches
only (`forget_term`, `retain_term`); methods without a retain term never draw a retain
batch. Forget crops, retain crops and the diffusion draws come from three generators seeded
from one seed, so every method of a seed sees the same forget crops.

Shapes: songs (N,) float32 at the working rate; batches (B, L).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from harmonycloak.bench.unlearning.losses import example_losses, output_distance
from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.optim.finetune import FinetuneRecipe, crop_batch, finetune
from harmonycloak.settings import SEGMENT_S

METHODS = ("gradient-ascent", "ascent-descent", "ascent-kl", "npo", "retain-finetune")
RETRAIN = "retrain"  # the gold standard: the attacker trained without the forget set
ASCENT_METHODS = ("gradient-ascent", "ascent-descent", "ascent-kl", "npo")
RETAIN_TERMS = {"ascent-descent": "descent", "ascent-kl": "kl"}  # methods that read the retain set, and how


@dataclass(frozen=True)
class UnlearningRecipe:
    """How long and how hard the model owner unlearns (one per threat model: a suite fixes it)."""

    steps: int = 20  # Adam steps
    # Ascent is unbounded: on the zoo's ar-transformer fine-tuned at 1e-4, 20 ascent steps at 1e-5 raise the
    # forgotten songs' loss 26 times as far as retraining does, at 1e-6 half as far (suites set it per threat)
    learning_rate: float = 2e-6
    batch_segments: int = 8  # crops per batch, of the forget and of the retain set alike
    segment_s: float = SEGMENT_S  # crop length
    retain_weight: float = 1.0  # λ of the retain term (descent or KL)
    npo_beta: float = 10.0  # β of NPO, per relative loss change (module docstring)
    crop_grid_samples: int = 1  # crops start on multiples of this (a codec LM's frame: `threats.crop_grid_samples`)

    def __post_init__(self) -> None:
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise SettingsError(f"unlearning steps must be a whole number ≥ 1, not {self.steps}")
        for name in ("learning_rate", "segment_s", "npo_beta"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{name.replace('_', ' ')} must be positive, not {getattr(self, name)}")
        if not self.retain_weight >= 0:
            raise SettingsError(f"the retain weight must be ≥ 0, not {self.retain_weight}")

    def crops(self, steps: int | None = None, learning_rate: float | None = None) -> FinetuneRecipe:
        """The crops (and, for `retain-finetune`, the fine-tune) of this recipe: random crops as they
        are, no gain or speed augmentation (the owner unlearns the songs it trained on)."""
        return FinetuneRecipe(kind="full", steps=steps or self.steps, learning_rate=learning_rate or self.learning_rate,
                              batch_segments=self.batch_segments, segment_s=self.segment_s,
                              crop_grid_samples=self.crop_grid_samples, augment_gain=False, augment_speed=False)


def forget_term(method: str, model: GenerativeModel, original: GenerativeModel, forget_batch: Tensor,
                generator: torch.Generator, npo_beta: float) -> Tensor:
    """The ascent part of a method's objective: it reads the forget batch (B, L) and nothing else."""
    if method == "npo":
        state = generator.get_state()
        losses = example_losses(model, forget_batch, generator)  # (B,)
        with torch.no_grad():
            reference = example_losses(original, forget_batch, torch.Generator().set_state(state))  # same draws
        scale = reference.mean().clamp_min(1e-12)
        return scale * (-(2.0 / npo_beta) * F.logsigmoid(npo_beta * (losses - reference) / scale)).mean()
    if method in ASCENT_METHODS:
        return -example_losses(model, forget_batch, generator).mean()
    raise SettingsError(f"'{method}' has no ascent term (ascent methods: {', '.join(ASCENT_METHODS)})")


def retain_term(method: str, model: GenerativeModel, original: GenerativeModel, retain_batch: Tensor,
                generator: torch.Generator) -> Tensor:
    """The retain part of a method's objective: it reads the retain batch (B, L) and nothing else."""
    kind = RETAIN_TERMS.get(method)
    if kind == "descent":
        return example_losses(model, retain_batch, generator).mean()
    if kind == "kl":
        return output_distance(model, original, retain_batch, generator)
    raise SettingsError(f"'{method}' has no retain term (methods with one: {', '.join(RETAIN_TERMS)})")


def unlearning_loss(method: str, model: GenerativeModel, original: GenerativeModel, forget_batch: Tensor,
                    retain_batch: Tensor | None, generator: torch.Generator, recipe: UnlearningRecipe) -> Tensor:
    """The scalar a step of `method` minimises (module docstring)."""
    loss = forget_term(method, model, original, forget_batch, generator, recipe.npo_beta)
    if method in RETAIN_TERMS:
        loss = loss + recipe.retain_weight * retain_term(method, model, original, retain_batch, generator)
    return loss


def unlearn(method: str, model: GenerativeModel, forget: Sequence[np.ndarray], retain: Sequence[np.ndarray],
            recipe: UnlearningRecipe, seed: int) -> tuple[list[float], float]:
    """Apply `method` to `model` in place; returns (its objective at every step, seconds it took).

    `model` is the original θ₀ on entry (a frozen copy is kept as the reference where a
    method needs one). Only parameters that require a gradient move (frozen pretrained parts
    stay as they are). Deterministic for `seed`.
    """
    if method not in METHODS:
        raise SettingsError(f"unknown unlearning method '{method}' (known: {', '.join(METHODS)})")
    if not forget:
        raise SettingsError("unlearning needs at least one song to forget")
    if (method == "retain-finetune" or method in RETAIN_TERMS) and not retain:
        raise SettingsError(f"'{method}' needs songs to retain")
    started = time.perf_counter()
    if method == "retain-finetune":
        curve = finetune(model, retain, recipe.crops(), seed)
        return curve, time.perf_counter() - started
    original = copy.deepcopy(model).requires_grad_(False).eval()
    forget_crops, retain_crops, draws = (torch.Generator().manual_seed(seed * 3 + offset) for offset in range(3))
    crops = recipe.crops()
    device = next(model.parameters()).device
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
    was_training = model.training
    model.eval()  # the per-example losses are the eval-mode ones (no audio family has dropout or batch norm)
    curve = []
    try:
        for _ in range(recipe.steps):
            forget_batch = crop_batch(forget, crops, forget_crops).to(device)
            retain_batch = crop_batch(retain, crops, retain_crops).to(device) if method in RETAIN_TERMS else None
            optimiser.zero_grad(set_to_none=True)
            loss = unlearning_loss(method, model, original, forget_batch, retain_batch, draws, recipe)
            loss.backward()
            optimiser.step()
            curve.append(loss.item())
    finally:
        model.train(was_training)
    return curve, time.perf_counter() - started
