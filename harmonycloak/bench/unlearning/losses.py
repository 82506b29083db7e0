"""What the unlearning methods differentiate, per model family: each example's loss, and how far a
model's outputs have moved from the original model's.

  example_losses(model, inputs, generator)       ℓ_θ(x_i) per example (B,): the family's own
                                                 generative loss (paper Eq. 3), its negative
                                                 log-likelihood up to constants
  output_distance(model, original, inputs, ...)  D(θ, θ₀; x): the KL of the original model's
                                                 output distribution to the model's, or what
                                                 stands for it, averaged over the batch

Per family:

  next-frame (ar-*)  ℓ = mean squared error of the predicted next log-mel frame: the NLL of a
                     unit-variance Gaussian N(μ_θ, I) up to a constant and a factor ½. The
                     KL of two such Gaussians is ½‖μ₀ − μ_θ‖², so D is the mean squared
                     difference of the two models' predicted frames (the factor ½ dropped):
                     for a regression model "KL to the original" is exactly the distance of
                     its predictions to the original model's.
  codec-lm           ℓ = next-code cross-entropy (nats per code); D = KL(p₀ ‖ p_θ) of the
                     next-code distributions, summed over the codes of a codebook, averaged
                     over frames, codebooks and examples (exact).
  mel-diffusion      ℓ = the v-prediction error ‖v − v_θ(x_t, t, c)‖² at one (t, ε) per example
                     drawn from `generator` (its training loss, without the condition dropout);
                     D = the mean squared difference of the two models' velocity predictions at
                     the same (x_t, t, c). Each reverse step is a Gaussian with a fixed
                     variance and a mean linear in v̂, so its KL is that squared difference
                     times a factor of t, dropped here (every t counts alike, as in training).

The contrastive encoder has no per-song likelihood to forget and is not covered
(`check_unlearnable_family`).

Shapes: inputs (B, N) waveforms at the working rate; T frames, F mel bands, K codebooks, V codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel

NOT_UNLEARNABLE = ("contrastive",)  # families without a generative loss per song


def check_unlearnable_family(family: str) -> None:
    if family in NOT_UNLEARNABLE:
        raise SettingsError(f"'{family}' is an encoder with no per-song likelihood; unlearning covers the "
                            "generative families (ar-transformer, ar-gru, ar-tcn, codec-lm, mel-diffusion)")


def example_losses(model: GenerativeModel, inputs: Tensor, generator: torch.Generator) -> Tensor:
    """ℓ_θ per example (B,) of waveforms (B, N), differentiable in the model's weights.

    Deterministic for next-frame and codec models; the diffusion model's (t, ε) come from
    `generator`, so two models given generators in equal states are compared at equal draws.
    """
    if model.family == "mel-diffusion":
        frames = model.features(inputs)
        predicted, target = diffusion_velocities(model, frames, *_diffusion_draws(model, frames, generator))
        return (predicted - target).square().mean(dim=(1, 2))
    return model.generative_loss(inputs)


def output_distance(model: GenerativeModel, original: GenerativeModel, inputs: Tensor,
                    generator: torch.Generator) -> Tensor:
    """D(θ, θ₀; inputs), a scalar ≥ 0 (module docstring); gradients reach `model` only."""
    frames = model.features(inputs)
    if model.family == "mel-diffusion":
        t, noise = _diffusion_draws(model, frames, generator)
        predicted, _ = diffusion_velocities(model, frames, t, noise)
        with torch.no_grad():
            reference, _ = diffusion_velocities(original, frames, t, noise)
        return (predicted - reference).square().mean()
    if model.family == "codec-lm":
        assignment = model.assignments(frames)[:, :-1]  # (B, T'−1, K, V): the frozen codec's, equal in both
        log_p = torch.log_softmax(model.logits(assignment), dim=-1)
        with torch.no_grad():
            log_p0 = torch.log_softmax(original.logits(assignment), dim=-1)
        return (log_p0.exp() * (log_p0 - log_p)).sum(-1).mean()
    predicted, _ = model.predict(frames)
    with torch.no_grad():
        reference, _ = original.predict(frames)
    return (predicted - reference).square().mean()


def diffusion_velocities(model: GenerativeModel, frames: Tensor, t: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """(v_θ(x_t, t, c), the target v), both (B, F, T'), of log-mel frames (B, T, F) at the draws t (B,)
    and ε (B, F, T'), conditioned on the model's frozen encoder's embedding of the same frames."""
    return model.velocities(model.normalise(frames), model.condition_of(frames), t, noise)


def _diffusion_draws(model: GenerativeModel, frames: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One (t, ε) per example of frames (B, T, F), as the diffusion model's training draws them:
    t (B,), ε (B, F, T')."""
    return model.training_draws(model.normalise(frames), generator)
