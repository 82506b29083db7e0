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
        evaluate, evaluate_every: as in `train_on_batches`.
    """

    def next_batch() -> Tensor:
        segment_ids = torch.randint(num_segments, (min(batch_segments, num_segments),), generator=generator)
        return batches(segment_ids)

    return train_on_batches(model, next_batch, steps, learning_rate, generator, evaluate, evaluate_every)


def train_on_batches(
    model: GenerativeModel,
    next_batch: Callable[[], Tensor],
    steps: int,
    learning_rate: float,
    generator: torch.Generator,
    evaluate: Callable[[GenerativeModel], float] | None = None,
    evaluate_every: int = 1,
    after_step: Callable[[int, GenerativeModel], None] | None = None,
    training_loss: Callable[[Tensor, torch.Generator], Tensor] | None = None,
) -> list[float]:
    """The one training loop: `steps` Adam steps on the family's training loss of `next_batch()`
    (model inputs (B, ...); `model.training_loss`, whose random draws come from `generator`),
    moving only the parameters that require a gradient.

    Args:
        evaluate: if given, called after every `evaluate_every`-th step and after the last,
            and its value recorded instead of the training batch's loss (e.g. the loss on a
            fixed set of segments); the curve then has one value per evaluation.
        after_step: if given, called with the step's number (1 … steps) and the model after
            every optimiser step (e.g. to measure the model part-way through its training).
        training_loss: if given, the loss of a batch in its place (a model of codec tokens
            reading batches of codes: `training_loss_on_tokens`).
    Returns:
        The loss of every step's batch, or the values of `evaluate`.
    """
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    curve = []
    for step in range(1, steps + 1):
        inputs = next_batch()
        optimiser.zero_grad(set_to_none=True)
        loss = (training_loss or model.training_loss)(inputs, generator)
        loss.backward()
        optimiser.step()
        if after_step is not None:
            after_step(step, model)
        if evaluate is None:
            curve.append(loss.item())
        elif step % evaluate_every == 0 or step == steps:
            curve.append(evaluate(model))
    return curve
