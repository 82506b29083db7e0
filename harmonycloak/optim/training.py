"""Plain training of a generative model on a set of segments: the attacker's side of the story.

Used to make white-box checkpoints (`harmonycloak train`), to measure in `verify` how fast a
fresh model learns a song, and by the benchmarks. The min-min loop has its own outer step;
this is ordinary training with Adam, as attackers (and the paper's target models, §5.1) use.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from harmonycloak.models.interface import GenerativeModel


def train_generative_model(
    model: GenerativeModel,
    batches: Callable[[Tensor], Tensor],
    num_segments: int,
    steps: int,
    generator: torch.Generator,
    batch_segments: int = 8,
    learning_rate: float = 1e-3,
    evaluate: Callable[[GenerativeModel], float] | None = None,
    evaluate_every: int = 1,
) -> list[float]:
    """Train `model` for `steps` Adam steps on random batches of segments; returns the loss curve.

    Args:
        batches: segment ids (B,) → model inputs (B, ...).
        evaluate: if given, called after every `evaluate_every`-th step and after the last,
            and its value recorded instead of the training batch's loss (e.g. the loss on a
            fixed set of segments); the curve then has one value per evaluation.
    """
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    curve = []
    for step in range(1, steps + 1):
        segment_ids = torch.randint(num_segments, (min(batch_segments, num_segments),), generator=generator)
        optimiser.zero_grad(set_to_none=True)
        loss = model.generative_loss(batches(segment_ids)).mean()
        loss.backward()
        optimiser.step()
        if evaluate is None:
            curve.append(loss.item())
        elif step % evaluate_every == 0 or step == steps:
            curve.append(evaluate(model))
    return curve
