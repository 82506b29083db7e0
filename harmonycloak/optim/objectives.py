"""Losses the noise is optimised against, beside each model's own generative loss.

Models are `models.interface.GenerativeModel`s: a front end (`features`), a generative loss
per example on the features, and `predict` (what the model outputs and what it should).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harmonycloak.models.interface import GenerativeModel


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
