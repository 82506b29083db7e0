"""The protection check of `verify`: twin fresh surrogates, one trained on the protected music and
one on the original, from the same initial weights, the same way.

If the cloak works, the first one's loss falls faster (the protected music looks already
learned) and it ends up knowing the original less well: its loss on the clean original stays
above its twin's. The gap is that difference (above 0: learned less).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from harmonycloak.models.interface import GenerativeModel
from harmonycloak.optim.minmin import mean_generative_loss
from harmonycloak.optim.training import train_generative_model


def twin_training(make_model: Callable[[], GenerativeModel], original: Tensor, protected: Tensor, steps: int,
                  seed: int, learning_rate: float = 1e-3) -> dict:
    """Train `make_model()` on `protected` and (a twin) on `original` model inputs (S, ...); compare.

    `make_model` must build the same initial weights every call (a seeded builder).
    """
    curves, final_on_original = {}, {}
    for name, data in (("protected", protected), ("original", original)):
        model = make_model()
        generator = torch.Generator().manual_seed(seed)
        curves[name] = train_generative_model(model, lambda ids, d=data: d[ids], len(data), steps, generator,
                                              learning_rate=learning_rate)
        final_on_original[name] = mean_generative_loss([model], lambda ids: original[ids], len(original))
    return {
        "training_steps": steps,
        "loss_curve": curves,
        "loss_on_original_after_training": final_on_original,
        # > 0: the model trained on the protected music knows the original less well than its twin.
        "learning_gap": final_on_original["protected"] - final_on_original["original"],
    }


def format_twin_training(protection: dict, models: str, medium: str) -> list[str]:
    """The twin comparison as text lines."""
    curves = protection["loss_curve"]
    on_original = protection["loss_on_original_after_training"]
    return [
        f"How protected is it? (twin {models}, {protection['training_steps']} training steps each)",
        f"  training loss on protected {medium:<6} {curves['protected'][0]:.4f} → {curves['protected'][-1]:.4f}",
        f"  training loss on original {medium:<6}  {curves['original'][0]:.4f} → {curves['original'][-1]:.4f}",
        f"  loss on the original after training: trained on protected {on_original['protected']:.4f}, "
        f"on original {on_original['original']:.4f} (gap {protection['learning_gap']:+.4f}; above 0 = learned less)",
    ]
