"""Fréchet Audio Distance (FAD) of paper §5.1 and Tables 3-6, 10: how far the statistics of
generated audio are from those of real audio in an embedding space.

    FAD = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})

where (μ_r, Σ_r) and (μ_g, Σ_g) are the mean and covariance of the embeddings of the real and
generated clips, each clip giving one embedding per analysis patch (0.96 s for VGGish), all
patches of a set pooled [Kilgour2019]. It is the Fréchet (2-Wasserstein) distance between two
Gaussians [Dowson1982]; 0 for identical statistics, larger is worse. Its value depends on
the embedder: numbers from different embedders, or from a different number of patches (FAD
is biased upwards for small sets [Gui2024]), are not comparable.

The embedders live in `harmonycloak.metrics.embeddings`: VGGish with the user's weights (the
paper's choice) and an offline default that needs no weights.

References
----------
[Kilgour2019] K. Kilgour, M. Zuluaga, D. Roblek and M. Sharifi, "Fréchet Audio Distance: a
    reference-free metric for evaluating music enhancement algorithms", Interspeech 2019,
    pp. 2350-2354 (the paper's [63]).
[Dowson1982] D. C. Dowson and B. V. Landau, "The Fréchet distance between multivariate normal
    distributions", J. Multivariate Analysis 12(3), 1982, pp. 450-455.
[Gui2024] A. Gui, H. Gamper, S. Braun and D. Emmanouilidou, "Adapting Fréchet Audio Distance
    for generative music evaluation", ICASSP 2024 (fadtk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import linalg

from harmonycloak.errors import SettingsError

Embedder = Callable[[np.ndarray, int], np.ndarray]
"""``embedder(waveform, sample_rate_hz) -> embeddings``: a mono waveform, float (samples,) in
[-1, 1], to float (patches, dim), one row per analysis patch (possibly zero rows for a clip
shorter than one patch)."""


def gaussian_statistics(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of embeddings (n, dim): (mean (dim,), covariance (dim, dim)), float64.

    The covariance is the unbiased one (divided by n − 1), as in the reference FAD code
    (``np.cov``) [Kilgour2019].

    Raises:
        SettingsError: fewer than 2 embeddings (no covariance) or not a 2-D array.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2:
        raise SettingsError(f"embeddings must have shape (n, dim); got {embeddings.shape}")
    if embeddings.shape[0] < 2:
        raise SettingsError(
            f"a Fréchet distance needs at least 2 embeddings per set to estimate a covariance; got {embeddings.shape[0]}"
        )
    return embeddings.mean(axis=0), np.cov(embeddings, rowvar=False).reshape(embeddings.shape[1], embeddings.shape[1])


def frechet_distance(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    """Fréchet distance between N(mean_a, cov_a) and N(mean_b, cov_b) [Dowson1982].

    Formula: ‖μ_a − μ_b‖² + Tr(Σ_a) + Tr(Σ_b) − 2 Tr((Σ_a Σ_b)^{1/2}).

    The trace of the matrix square root is computed as Σ_i sqrt(λ_i) over the eigenvalues λ_i
    of the symmetric positive semi-definite S = Σ_a^{1/2} Σ_b Σ_a^{1/2}, which has the same
    eigenvalues as Σ_a Σ_b. Unlike ``scipy.linalg.sqrtm(Σ_a Σ_b)`` this needs no complex
    arithmetic and stays finite for singular covariances (fewer embeddings than dimensions);
    eigenvalues that rounding makes slightly negative are set to 0.

    Args:
        mean_a, mean_b: shape (dim,).
        cov_a, cov_b: shape (dim, dim), symmetric positive semi-definite.

    Returns:
        The distance, ≥ 0 up to rounding (clamped at 0): squared units of the embedding.

    Raises:
        SettingsError: shapes that do not match.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    dim = mean_a.shape[0] if mean_a.ndim == 1 else -1
    if mean_a.shape != (dim,) or mean_b.shape != (dim,) or cov_a.shape != (dim, dim) or cov_b.shape != (dim, dim):
        raise SettingsError(
            f"means must be (dim,) and covariances (dim, dim) of one dim; got {mean_a.shape}, {cov_a.shape}, "
            f"{mean_b.shape}, {cov_b.shape}"
        )
    sqrt_a = _psd_sqrt(cov_a)
    middle = sqrt_a @ cov_b @ sqrt_a
    eigenvalues = linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(distance, 0.0)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (dim, dim) by eigendecomposition."""
    eigenvalues, vectors = linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


def embed_clips(clips: Sequence[np.ndarray] | np.ndarray, sample_rate_hz: int, embedder: Embedder) -> np.ndarray:
    """Embeddings of all patches of all clips, pooled: float64 (patches, dim).

    Args:
        clips: mono waveforms, each float (samples,) in [-1, 1], any lengths; or one array
            (clips, samples).
        sample_rate_hz: their sample rate (the embedder resamples if it needs another).
        embedder: see `Embedder`.
    """
    if isinstance(clips, np.ndarray) and clips.ndim == 1:
        raise SettingsError("clips must be a list of waveforms or an array (clips, samples), not one waveform")
    parts = []
    for index, clip in enumerate(clips):
        clip = np.asarray(clip, dtype=np.float32)
        if clip.ndim != 1:
            raise SettingsError(f"clip {index} must be mono, shape (samples,); got {clip.shape}")
        parts.append(np.asarray(embedder(clip, sample_rate_hz), dtype=np.float64))
    if not parts:
        raise SettingsError("no clips to embed")
    return np.concatenate(parts, axis=0)


def frechet_audio_distance(
    real_clips: Sequence[np.ndarray] | np.ndarray,
    generated_clips: Sequence[np.ndarray] | np.ndarray,
    sample_rate_hz: int,
    embedder: Embedder | None = None,
) -> float:
    """FAD between a set of real clips and a set of generated clips [Kilgour2019].

    Every clip is embedded patch by patch; the patches of each set are pooled into one
    Gaussian (`gaussian_statistics`) and the two Gaussians compared (`frechet_distance`).

    Args:
        real_clips, generated_clips: mono waveforms (samples,) in [-1, 1], any lengths, or
            arrays (clips, samples).
        sample_rate_hz: sample rate of both sets.
        embedder: `embeddings.VGGishEmbedder.from_file(path)` (the paper's VGGish, with the
            user's weights), or None for the offline default
            `embeddings.SpectralStatisticsEmbedder()`. Compare only FADs of one embedder.

    Returns:
        FAD ≥ 0 in squared embedding units; 0 when both sets have the same statistics.

    Raises:
        SettingsError: a set gives fewer than 2 patches (clips shorter than the embedder's
            patch, or one short clip).
    """
    if embedder is None:
        from harmonycloak.metrics.embeddings import SpectralStatisticsEmbedder

        embedder = SpectralStatisticsEmbedder()
    real = gaussian_statistics(embed_clips(real_clips, sample_rate_hz, embedder))
    generated = gaussian_statistics(embed_clips(generated_clips, sample_rate_hz, embedder))
    return frechet_distance(*real, *generated)
