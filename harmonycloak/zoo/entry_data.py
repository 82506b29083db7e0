"""What a zoo entry trains on: a training sampler, a fixed held-out batch, and what the card says of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class EntryData:
    """What an entry trains on.

    Attributes:
        sample: (batch, generator) → a training batch.
        heldout: the fixed evaluation batch.
        describe: for the card: sources, files with their sha256 and split, hours.
    """

    sample: Callable[[int, torch.Generator], Tensor]
    heldout: Tensor
    describe: dict = field(default_factory=dict)
