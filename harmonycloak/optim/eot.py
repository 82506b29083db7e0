"""Expectation over transformations (EOT): optimise the noise for what survives the purifications
an attacker (or a streaming service) applies before training.

With EOT on, every batch of protected input the optimiser hands the models, x + δ as they hear
it (the mono mix at the working rate), is first replaced by what one purification leaves of it,
drawn at random per batch from the chosen ones and the identity ("none": the file as released).
Averaged over the draws, the objective is the expectation over those transformations.

The purifications are `harmonycloak.purification`'s (real codecs, resampling, spectral
subtraction, noise and low-pass); none is differentiable, so the gradient goes through each as
through the identity (the straight-through estimator):

    y = z + stopgrad(T(z) − z)     (forward: T(z); gradient: ∂y/∂z = I)

This is exact for what a purification passes unchanged and points the right way for what it
attenuates; it cannot see what a codec removes, which is why the objective is evaluated on T(z).

Draws come from a generator of their own (seeded from the protection's seed), so turning EOT on
changes no other random draw of the optimiser: segments, batches and sampled models stay paired.

Shapes: inputs (B, S) float, at `sample_rate_hz`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

IDENTITY = "none"  # the file as released, among the draws


class Transformations:
    """A random purification per batch, with the straight-through gradient (module docstring).

    Args:
        names: purifications to draw from (keys of `purification.ATTACKS`); the identity is
            always among the draws, each drawn with probability 1 / (len(names) + 1).
        sample_rate_hz: the rate of the inputs.
        seed: seeds the draws (which purification, and the purification's own randomness).
    """

    def __init__(self, names: tuple[str, ...], sample_rate_hz: int, seed: int) -> None:
        from harmonycloak.purification import check_attack

        for name in names:
            check_attack(name)
        self.choices = (IDENTITY,) + tuple(dict.fromkeys(names))
        self.sample_rate_hz = sample_rate_hz
        self.generator = torch.Generator().manual_seed(seed)
        self.draws = dict.fromkeys(self.choices, 0)  # how often each was drawn so far

    def __call__(self, inputs: Tensor) -> Tensor:
        """(B, S) → (B, S): the batch after one drawn purification (forward), the identity (backward)."""
        from harmonycloak.purification import apply_attack

        name = self.choices[int(torch.randint(len(self.choices), (1,), generator=self.generator))]
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
        self.draws[name] += 1
        if name == IDENTITY:
            return inputs
        rows = inputs.detach().float().cpu().numpy()
        purified = np.stack([apply_attack(name, row, self.sample_rate_hz, seed=seed + index)
                             for index, row in enumerate(rows)])
        return inputs + (torch.from_numpy(purified).to(inputs) - inputs).detach()
