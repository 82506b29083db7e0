"""Bounds shared by the noise parameterisations.

Both cloaks keep every window's (or frame's) noise inside a per-window range by a smooth
map from an unconstrained parameter (paper §4.1: "a sigmoid-based function"). Because
neighbouring windows are cross-faded, a window's noise also carries a share of its
neighbours' noise; `neighbour_minimum` lowers each upper bound to the smallest of its own
and its two neighbours', which keeps the faded noise under every window's own bound and
exactly zero in windows that must stay silent.
"""

from __future__ import annotations

import torch
from torch import Tensor


def neighbour_minimum(upper: Tensor) -> Tensor:
    """min(upper[t-1], upper[t], upper[t+1]) along the last axis, shape unchanged (..., T)."""
    padded = torch.cat([upper[..., :1], upper, upper[..., -1:]], dim=-1)
    return torch.minimum(torch.minimum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])


def sigmoid_between(parameter: Tensor, lower: Tensor, upper: Tensor) -> Tensor:
    """lower + (upper − lower) · sigmoid(parameter): always strictly inside [lower, upper]."""
    return lower + (upper - lower) * torch.sigmoid(parameter)


def bounded_complex(parameter: Tensor, magnitude_bound: Tensor) -> Tensor:
    """Complex value of magnitude < bound from two unconstrained reals (..., 2) → (...,) complex.

    z = bound · tanh(|c|) / |c| · c with c = parameter[..., 0] + i parameter[..., 1]: the
    direction of c sets the phase, tanh keeps the magnitude strictly under the bound, and
    tanh(r)/r → 1 as r → 0 keeps it smooth at the origin.
    """
    real, imaginary = parameter[..., 0], parameter[..., 1]
    radius = torch.sqrt(real.square() + imaginary.square() + 1e-12)
    gain = magnitude_bound * torch.tanh(radius) / radius
    return torch.complex(gain * real, gain * imaginary)
