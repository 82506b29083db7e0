"""Protection score arithmetic: pure functions, no models.

    PS = (L_cloaked − L_clean) / (L_unseen − L_clean)

all three losses measured on the *clean originals* of the protected songs, by models of one
family trained from scratch on (a) the clean training set, (b) the training set with the
protected songs replaced by their cloaked versions, (d) the training set without the
protected songs. PS = 1: the model learned the protected songs as little as if it had never
seen them; PS = 0: the cloak changed nothing; PS < 0: the cloaked songs were learned *better*.

When L_unseen == L_clean (within `min_gap`), seeing the songs taught the model nothing
measurable, and no cloak can be scored: PS is NaN, and the report says the gap was too small
(docs/benchmark.md). The relative gap (L_unseen − L_clean) / L_clean is reported beside every PS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def protection_score(loss_cloaked: float, loss_clean: float, loss_unseen: float, min_gap: float = 1e-9) -> float:
    """PS of one seed; NaN when |L_unseen − L_clean| ≤ min_gap (no measurable gap) or a loss is NaN."""
    gap = loss_unseen - loss_clean
    if not all(math.isfinite(v) for v in (loss_cloaked, loss_clean, loss_unseen)) or abs(gap) <= min_gap:
        return math.nan
    return (loss_cloaked - loss_clean) / gap


def relative_gap(loss_clean: float, loss_unseen: float) -> float:
    """(L_unseen − L_clean) / L_clean: how much better seen songs are learned than unseen ones; NaN if L_clean ≤ 0."""
    if not loss_clean > 0:
        return math.nan
    return (loss_unseen - loss_clean) / loss_clean


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, count) over the finite values.

    NaNs (degenerate seeds) and Nones (NaN or infinity read back from JSON) are left out and
    counted out; the std of one value is 0, of none NaN, as is the mean of none.
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, 0.0, 1
    variance = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return mean, math.sqrt(variance), len(finite)


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """'0.31 ± 0.05 (n=3)'; 'n/a' when no finite value; a single value without ±."""
    mean, std, count = mean_std(values)
    if count == 0:
        return "n/a"
    if count == 1:
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={count})"
