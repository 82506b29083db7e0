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

Two threat models share this arithmetic and differ in the loss that stands for "never learnt"
(the denominator's reference, PS = 1):

  scratch (the paper)  PS       = (L_cloaked − L_clean) / (L_unseen − L_clean)
                       reference: L_unseen, a model trained from scratch without the protected
                       songs, with the same seed as the clean and cloaked runs.
  mimicry (fine-tune)  PS_mimic = (L_ft_cloaked − L_ft_clean) / (L_base − L_ft_clean)
                       reference: L_base, the pretrained base model before any fine-tuning
                       (it never saw the artist); L_ft_* after fine-tuning it on the clean or
                       the cloaked release.

Paired runs: one seed fixes the initialisation and the data order in every condition, so a
seed's luck (a good start, a lucky order) shifts its clean, cloaked and reference losses alike
and cancels in the differences. Losses come as (seeds, songs) arrays, one cell per seed and
protected song, every condition in the same cell order; L_base may be (songs,) (one base model).

Bootstrap interval (`bootstrap_interval`): hierarchical over seeds, then songs within each
drawn seed; each resample's PS is the ratio of its *mean* losses, never a mean of per-song
ratios, whose small denominators (songs barely learnt) would blow it up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harmonycloak.errors import HarmonyCloakError


def protection_score(loss_cloaked: float, loss_clean: float, loss_unseen: float, min_gap: float = 1e-9) -> float:
    """PS of one seed; NaN when |L_unseen − L_clean| ≤ min_gap (no measurable gap) or a loss is NaN."""
    return float(_gap_ratio(np.float64(loss_cloaked), np.float64(loss_clean), np.float64(loss_unseen), min_gap))


def _gap_ratio(loss_protected: np.ndarray, loss_clean: np.ndarray, loss_reference: np.ndarray,
               min_gap: float) -> np.ndarray:
    """(L_protected − L_clean) / (L_reference − L_clean), elementwise (broadcast shapes), float64;
    NaN where a loss is not finite or |L_reference − L_clean| ≤ min_gap."""
    protected, clean, reference = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                                        for a in (loss_protected, loss_clean, loss_reference)))
    with np.errstate(invalid="ignore"):  # inf − inf where a loss is infinite: left out below
        gap, learnt = reference - clean, protected - clean
    defined = np.isfinite(protected) & np.isfinite(clean) & np.isfinite(reference) & (np.abs(gap) > min_gap)
    return np.divide(learnt, gap, out=np.full(gap.shape, np.nan), where=defined)


def protection_scores_paired(loss_cloaked: np.ndarray, loss_clean: np.ndarray, loss_unseen: np.ndarray,
                             min_gap: float = 1e-9) -> np.ndarray:
    """From scratch: PS[s, k] = (L_cloaked − L_clean) / (L_unseen − L_clean) per seed s and song k.

    Args:
        loss_cloaked, loss_clean, loss_unseen: (seeds, songs) losses on the clean originals of
            the protected songs, of the runs of one seed trained on the cloaked set, the clean
            set and the set without the protected songs.
    Returns:
        (seeds, songs) float64; NaN where a loss is NaN or the gap is within ``min_gap`` of 0.
    """
    protected, clean, reference = _paired_losses(loss_cloaked, loss_clean, loss_unseen)
    return _gap_ratio(protected, clean, reference, min_gap)


def mimicry_scores_paired(loss_ft_cloaked: np.ndarray, loss_ft_clean: np.ndarray, loss_base: np.ndarray,
                          min_gap: float = 1e-9) -> np.ndarray:
    """Style mimicry: PS_mimic[s, k] = (L_ft_cloaked − L_ft_clean) / (L_base − L_ft_clean).

    Args:
        loss_ft_cloaked, loss_ft_clean: (seeds, songs) losses on the clean originals of the
            artist's songs after fine-tuning the base model (seed s) on the cloaked / clean release.
        loss_base: the base model's losses on the same songs before fine-tuning, (songs,) or
            (seeds, songs).
    Returns:
        (seeds, songs) float64: 1 = fine-tuning on the release taught nothing about the artist,
        0 = as much as the clean release; NaN where a loss is NaN or fine-tuning on the clean
        release did not move the loss (|L_base − L_ft_clean| ≤ min_gap).
    """
    protected, clean, reference = _paired_losses(loss_ft_cloaked, loss_ft_clean, loss_base)
    return _gap_ratio(protected, clean, reference, min_gap)


def _paired_losses(loss_protected, loss_clean, loss_reference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three conditions as (seeds, songs) float64 arrays; the reference may be (songs,).

    Raises:
        HarmonyCloakError: the protected and clean losses are not (seeds, songs) of one shape,
            or the reference fits neither (songs,) nor (seeds, songs).
    """
    protected, clean = np.asarray(loss_protected, np.float64), np.asarray(loss_clean, np.float64)
    reference = np.asarray(loss_reference, np.float64)
    if protected.ndim != 2 or protected.shape != clean.shape:
        raise HarmonyCloakError(f"paired losses must be (seeds, songs) arrays of one shape; got "
                                f"{protected.shape} and {clean.shape}")
    if reference.shape not in (protected.shape, protected.shape[1:]):
        raise HarmonyCloakError(f"the reference losses must be (songs,) or (seeds, songs) = {protected.shape}; "
                                f"got {reference.shape}")
    return protected, clean, np.broadcast_to(reference, protected.shape)


@dataclass(frozen=True)
class ScoreInterval:
    """A protection score and its bootstrap interval.

    Attributes:
        ps: ratio of the mean losses over every seed and song (see `bootstrap_interval`); NaN
            when the gap is degenerate.
        low, high: the interval's ends; NaN when it is not defined ("n/a").
        n_seeds, n_songs: seeds and songs with at least one cell where every loss is finite.
        confidence: the interval's nominal coverage.
    """

    ps: float
    low: float
    high: float
    n_seeds: int
    n_songs: int
    confidence: float = 0.95

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def text(self, digits: int = 2) -> str:
        """'0.31 [0.12, 0.50]'; '0.31 [n/a]' without an interval; 'n/a' without a score."""
        if not math.isfinite(self.ps):
            return "n/a"
        interval = f"[{self.low:.{digits}f}, {self.high:.{digits}f}]" if self.defined else "[n/a]"
        return f"{self.ps:.{digits}f} {interval}"


# At most this many (resample, seed, song) cells are held at once; resamples are drawn in blocks.
_BOOTSTRAP_BLOCK_CELLS = 1_000_000


def bootstrap_interval(loss_protected: np.ndarray, loss_clean: np.ndarray, loss_reference: np.ndarray, *,
                       n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
                       min_gap: float = 1e-9) -> ScoreInterval:
    """PS as a ratio of mean losses, with a hierarchical percentile bootstrap interval.

    Scratch: (L_cloaked, L_clean, L_unseen); mimicry: (L_ft_cloaked, L_ft_clean, L_base), each
    (seeds, songs) as in `protection_scores_paired` / `mimicry_scores_paired`. With m(·) the
    mean over the cells where all three losses are finite,

        PS = (m(L_protected) − m(L_clean)) / (m(L_reference) − m(L_clean)).

    Each of ``n_resamples`` resamples draws S seeds with replacement, then for each drawn seed
    K songs with replacement (S seeds, K songs), keeps the three conditions of a cell together
    (pairing), and takes the same ratio of its means. The interval holds the central
    ``confidence`` of those ratios (percentile method). A ratio of means rather than a mean of
    per-song ratios: a song the models barely learnt has a gap near 0, and its own ratio
    would be huge, of either sign, and would swamp the mean.

    Few seeds make the interval coarse and optimistic: 3 seeds give the seed level only 10
    distinct resamples, and on synthetic populations whose seeds differ (tests/bench/
    test_score.py) the 95 % interval covered the true PS about 80 % of the time with 3 seeds
    × 10 songs, 92 % with 20 seeds and 93.5 % with 30.

    Deterministic for ``seed``. NaN-safe: PS is NaN when its gap is within ``min_gap`` of 0 or no
    cell is finite; the interval is NaN ("n/a") then, and also when any resample's gap is
    (the data cannot exclude a zero gap, so the ratio has no bounded interval).

    Raises:
        HarmonyCloakError: shapes as in `mimicry_scores_paired`, or n_resamples < 1, or
            confidence outside (0, 1).
    """
    if n_resamples < 1 or not 0 < confidence < 1:
        raise HarmonyCloakError(f"a bootstrap needs n_resamples ≥ 1 and 0 < confidence < 1; "
                                f"got {n_resamples} and {confidence}")
    protected, clean, reference = _paired_losses(loss_protected, loss_clean, loss_reference)
    finite = np.isfinite(protected) & np.isfinite(clean) & np.isfinite(reference)  # (S, K)
    n_seeds, n_songs = int(finite.any(axis=1).sum()), int(finite.any(axis=0).sum())
    ps = _ratio_of_means(protected[None], clean[None], reference[None], finite[None], min_gap)[0]
    if not math.isfinite(ps):
        return ScoreInterval(math.nan, math.nan, math.nan, n_seeds, n_songs, confidence)
    ratios = _bootstrap_ratios(protected, clean, reference, finite, n_resamples, seed, min_gap)
    if not np.all(np.isfinite(ratios)):
        return ScoreInterval(float(ps), math.nan, math.nan, n_seeds, n_songs, confidence)
    low, high = np.quantile(ratios, [(1 - confidence) / 2, (1 + confidence) / 2])
    return ScoreInterval(float(ps), float(low), float(high), n_seeds, n_songs, confidence)


def _bootstrap_ratios(protected: np.ndarray, clean: np.ndarray, reference: np.ndarray, finite: np.ndarray,
                      n_resamples: int, seed: int, min_gap: float) -> np.ndarray:
    """(n_resamples,) ratios of mean losses of hierarchical resamples (seeds, then songs in each)."""
    num_seeds, num_songs = protected.shape
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_CELLS // (num_seeds * num_songs))
    ratios = []
    for start in range(0, n_resamples, block):
        count = min(block, n_resamples - start)
        seeds = rng.integers(0, num_seeds, size=(count, num_seeds))[:, :, None]  # (B, S, 1)
        songs = rng.integers(0, num_songs, size=(count, num_seeds, num_songs))  # (B, S, K)
        ratios.append(_ratio_of_means(protected[seeds, songs], clean[seeds, songs], reference[seeds, songs],
                                      finite[seeds, songs], min_gap))
    return np.concatenate(ratios)


def _ratio_of_means(protected: np.ndarray, clean: np.ndarray, reference: np.ndarray, finite: np.ndarray,
                    min_gap: float) -> np.ndarray:
    """(B, S, K) → (B,): (m(P) − m(C)) / (m(R) − m(C)), m the mean over finite cells; NaN if none
    or if the gap is within ``min_gap`` of 0."""
    count = finite.sum(axis=(1, 2))  # (B,)

    def mean(values):
        return np.where(finite, values, 0.0).sum(axis=(1, 2)) / np.maximum(count, 1)

    ratio = _gap_ratio(mean(protected), mean(clean), mean(reference), min_gap)
    return np.where(count > 0, ratio, np.nan)


def beats(control: ScoreInterval, method: ScoreInterval) -> bool:
    """The benchmark's decision rule: a method beats its random control when its whole interval
    lies above the control's (method.low > control.high). False when either interval is n/a."""
    return control.defined and method.defined and method.low > control.high


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
