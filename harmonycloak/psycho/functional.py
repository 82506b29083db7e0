"""The psychoacoustic model as pure, batched torch functions (paper §2.4, Eq. 2, 6, 10, read as docs/paper-reading.md says).

Every function works on tensors with any number of leading (batch) dimensions; the last
dimensions are named in each docstring: ``(..., time)`` for waveforms, ``(..., frames, bins)``
for spectra and thresholds. Levels are in dB SPL with the calibration of MPEG-1
psychoacoustic model 1 and Qin et al. (ICML 2019): a digital full-scale sine (peak amplitude
1.0) is ``full_scale_db_spl`` = 96 dB SPL, so a sine of peak amplitude A has the level
``full_scale_db_spl + 20 log10(A)``. This is also how the paper's Eq. 10 is read: the level
``20 log10(p / p0)`` with ``p0`` = 20 µPa is the level in dB SPL of that calibration.

The pipeline, in the order of the standard (ISO/IEC 11172-3 Annex D, psychoacoustic model 1;
Painter & Spanias, Proc. IEEE 2000, §III):

    spectrum_db_spl -> find_maskers -> filter_maskers -> individual_thresholds
        -> global_threshold -> temporal_masking_db_spl

Only the spectrum is differentiable in what the optimiser needs (noise -> its spectrum);
the masking threshold is computed from the clean music and returned without gradient.

Hand-written rather than taken from a library: no maintained library offers a batched,
differentiable torch implementation of MPEG-1 model 1 (ART's ``PsychoacousticMasker`` is
numpy, one frame at a time, and pulls in a large dependency).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harmonycloak.errors import SettingsError
from harmonycloak.settings import FULL_SCALE_DB_SPL

Tensor = torch.Tensor


def _as_tensor(value: Tensor | float) -> Tensor:
    """Tensors pass through; Python numbers become float64 tensors (exact enough for tests)."""
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)


# --------------------------------------------------------------------------- scales and levels


def absolute_threshold_db_spl(frequency_hz: Tensor | float, min_frequency_hz: float = 20.0) -> Tensor:
    """Threshold in quiet (Terhardt 1979), in dB SPL, elementwise.

    ``T_q(f) = 3.64 f^-0.8 - 6.5 exp(-0.6 (f - 3.3)^2) + 1e-3 f^4`` with f in kHz.
    The paper's Eq. 2 prints it without the ``1e-3 f^4`` term; we use the standard formula
    (docs/paper-reading.md), whose last term makes the threshold rise steeply above ~12 kHz.

    The formula diverges as f -> 0 (the f^-0.8 term), so frequencies below
    ``min_frequency_hz`` (20 Hz, the lower limit of hearing) are clamped to it: bins below
    20 Hz, DC included, get the threshold of 20 Hz (about 83 dB SPL).
    """
    frequency_khz = _as_tensor(frequency_hz).clamp_min(min_frequency_hz) / 1000.0
    return (
        3.64 * frequency_khz.pow(-0.8)
        - 6.5 * torch.exp(-0.6 * (frequency_khz - 3.3).pow(2))
        + 1e-3 * frequency_khz.pow(4)
    )


def hz_to_bark(frequency_hz: Tensor | float) -> Tensor:
    """Critical-band rate in Bark (Zwicker & Terhardt 1980), elementwise.

    ``z(f) = 13 atan(0.00076 f) + 3.5 atan((f / 7500)^2)`` with f in Hz.
    """
    frequency_hz = _as_tensor(frequency_hz)
    return 13.0 * torch.atan(0.00076 * frequency_hz) + 3.5 * torch.atan((frequency_hz / 7500.0).pow(2))


def amplitude_to_db_spl(
    amplitude: Tensor | float, full_scale_db_spl: float = FULL_SCALE_DB_SPL, amplitude_floor: float = 1e-10
) -> Tensor:
    """Level in dB SPL of a sine of peak amplitude ``amplitude`` (full scale = 1.0).

    ``L = full_scale_db_spl + 20 log10(max(A, amplitude_floor))``. The floor (1e-10, i.e.
    -200 dB below full scale, far below 24-bit quantisation at -144 dB) keeps the log finite
    and the gradient defined for silence; below it the gradient is zero. Pass
    ``amplitude_floor=0.0`` to get -inf for exact zeros (used by the metrics).
    """
    amplitude = _as_tensor(amplitude)
    if amplitude_floor > 0.0:
        amplitude = amplitude.clamp_min(amplitude_floor)
    return full_scale_db_spl + 20.0 * torch.log10(amplitude)


def db_spl_to_amplitude(level_db_spl: Tensor | float, full_scale_db_spl: float = FULL_SCALE_DB_SPL) -> Tensor:
    """Peak amplitude (full scale = 1.0) of a sine at ``level_db_spl``: ``10^((L - full_scale) / 20)``."""
    return torch.pow(10.0, (_as_tensor(level_db_spl) - full_scale_db_spl) / 20.0)


# --------------------------------------------------------------------------- spectrum


def _hann_window(n_fft: int, device=None, dtype=None) -> Tensor:
    """Periodic Hann window of length n_fft (the one whose shifted copies sum to a constant)."""
    return torch.hann_window(n_fft, periodic=True, device=device, dtype=dtype)


def stft_amplitude_scale(n_fft: int) -> float:
    """Factor from a complex STFT coefficient to sine amplitude: ``A = |Z| * scale``.

    A sine ``A cos(2 pi k n / n_fft)`` exactly at bin k gives ``|Z_k| = A sum(w) / 2`` under
    the window w, so ``scale = 2 / sum(w)`` (= 4 / n_fft for the periodic Hann window).
    """
    return float(2.0 / _hann_window(n_fft, dtype=torch.float64).sum())


def stft(waveform: Tensor, n_fft: int, hop_length: int) -> Tensor:
    """Complex STFT, ``(..., time) -> (..., frames, n_fft // 2 + 1)``, frames = 1 + time // hop_length.

    Periodic Hann window of length n_fft; frame j is centred on sample ``j * hop_length``
    (``center=True``). The signal is padded with zeros (not reflected) at both ends, so the
    first and last frames see silence outside the clip rather than a mirrored copy of it.
    Differentiable. Multiply ``abs()`` by ``stft_amplitude_scale(n_fft)`` for sine amplitude.
    """
    if n_fft < 2 or hop_length < 1:
        raise SettingsError(f"the analysis window ({n_fft} samples) and hop ({hop_length}) must be positive")
    leading, num_samples = waveform.shape[:-1], waveform.shape[-1]
    coefficients = torch.stft(
        waveform.reshape(-1, num_samples),
        n_fft=n_fft,
        hop_length=hop_length,
        window=_hann_window(n_fft, device=waveform.device, dtype=waveform.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (batch, bins, frames)
    return coefficients.transpose(-1, -2).reshape(*leading, coefficients.shape[-1], coefficients.shape[-2])


def istft(coefficients: Tensor, n_fft: int, hop_length: int, length: int) -> Tensor:
    """Inverse of `stft`: ``(..., frames, n_fft // 2 + 1)`` complex -> ``(..., length)`` real.

    Overlap-add with the same periodic Hann window and window-power normalisation
    (``torch.istft``), so ``istft(stft(x)) == x`` up to rounding for hops up to n_fft / 2.
    """
    leading = coefficients.shape[:-2]
    frames, bins = coefficients.shape[-2:]
    waveform = torch.istft(
        coefficients.reshape(-1, frames, bins).transpose(-1, -2),
        n_fft=n_fft,
        hop_length=hop_length,
        window=_hann_window(n_fft, device=coefficients.device, dtype=coefficients.real.dtype),
        center=True,
        length=length,
    )
    return waveform.reshape(*leading, length)


def spectrum_db_spl(
    waveform: Tensor,
    n_fft: int,
    hop_length: int,
    full_scale_db_spl: float = FULL_SCALE_DB_SPL,
    amplitude_floor: float = 1e-10,
) -> Tensor:
    """Power spectrum in dB SPL, ``(..., time) -> (..., frames, n_fft // 2 + 1)``. Differentiable.

    ``L[j, k] = full_scale_db_spl + 10 log10(max(|Z[j, k]|^2 scale^2, amplitude_floor^2))``
    with Z = `stft` and scale = `stft_amplitude_scale`: a sine of amplitude A exactly at a
    bin centre reads ``full_scale_db_spl + 20 log10(A)`` at its peak bin. Computed from the
    power, not from ``abs()``, so that the gradient stays finite at zero.
    """
    return coefficients_db_spl(stft(waveform, n_fft, hop_length), n_fft, full_scale_db_spl, amplitude_floor)


def coefficients_db_spl(coefficients: Tensor, n_fft: int, full_scale_db_spl: float = FULL_SCALE_DB_SPL,
                        amplitude_floor: float = 1e-10) -> Tensor:
    """`spectrum_db_spl` of STFT coefficients already taken (`stft`), ``(..., frames, bins)``."""
    power = coefficients.real.pow(2) + coefficients.imag.pow(2)
    amplitude_squared = power * stft_amplitude_scale(n_fft) ** 2
    if amplitude_floor > 0.0:
        amplitude_squared = amplitude_squared.clamp_min(amplitude_floor**2)
    return full_scale_db_spl + 10.0 * torch.log10(amplitude_squared)


def bin_frequencies_hz(sample_rate_hz: float, n_fft: int, device=None, dtype=torch.float32) -> Tensor:
    """Centre frequency of each STFT bin, ``(n_fft // 2 + 1,)``: ``k * sample_rate_hz / n_fft``."""
    return torch.arange(n_fft // 2 + 1, device=device, dtype=dtype) * (sample_rate_hz / n_fft)


# --------------------------------------------------------------------------- frequency masking


def _db_power_sum(*levels_db: Tensor) -> Tensor:
    """``10 log10(sum_i 10^(L_i / 10))`` computed stably (log-sum-exp); -inf terms contribute nothing."""
    stacked = torch.stack(levels_db, dim=0) * (math.log(10.0) / 10.0)
    return torch.logsumexp(stacked, dim=0) * (10.0 / math.log(10.0))


def _shift_bins(values: Tensor, offset: int, fill: float) -> Tensor:
    """``out[..., k] = values[..., k + offset]``, with ``fill`` where k + offset is out of range."""
    if offset == 0:
        return values
    if offset > 0:
        return F.pad(values[..., offset:], (0, offset), value=fill)
    return F.pad(values[..., :offset], (-offset, 0), value=fill)


def tonal_neighbourhood_bins(frequency_hz: Tensor, bin_hz: float) -> Tensor:
    """Half-width Δk, in bins, of the neighbourhood a tonal masker must dominate, ``(bins,)`` long.

    The standard (Layer II, 1024-point FFT at 44.1 kHz, 43.07 Hz per bin) uses Δk = 2 below
    bin 63, 2..3 below bin 127, 2..6 below bin 255 and 2..12 above. Expressed in Hz so that
    it holds at any resolution: half-widths of 86, 129, 258 and 517 Hz below 2.71, 5.47,
    10.98 kHz and above, converted to bins here and never less than 2.
    """
    reference_bin_hz = 44100.0 / 1024.0
    half_width_bins_at_reference = torch.where(
        frequency_hz < 63 * reference_bin_hz,
        2.0,
        torch.where(
            frequency_hz < 127 * reference_bin_hz,
            3.0,
            torch.where(frequency_hz < 255 * reference_bin_hz, 6.0, 12.0),
        ),
    )
    half_width_bins = torch.round(half_width_bins_at_reference * (reference_bin_hz / bin_hz))
    return half_width_bins.clamp_min(2).long()


def _neighbourhood_regions(half_width: Tensor):
    """Yield ``(first, stop, d)``: the run of bins ``first..stop-1`` whose half-width is ``d``, for each
    ``d`` (the half-width never decreases with frequency, so each value is one run)."""
    for d in torch.unique(half_width).tolist():
        bins = (half_width == d).nonzero().flatten()
        yield int(bins.min()), int(bins.max()) + 1, int(d)


def _neighbourhood_max(values: Tensor, half_width: Tensor, side: int) -> Tensor:
    """``out[..., k] = max(values[..., k + side * j] for j in 2..half_width[k])``, +inf past either end.

    ``(..., bins) -> (..., bins)``; ``side`` is -1 (below k) or 1 (above). `half_width` is
    constant over a few runs of bins (`tonal_neighbourhood_bins`): each run is one sliding
    maximum (max pooling) over the run and its reach.
    """
    num_bins = values.shape[-1]
    rows = values.reshape(-1, 1, num_bins)
    out = torch.empty_like(rows)
    for first, stop, d in _neighbourhood_regions(half_width):
        lo, hi = max(first - d, 0), min(stop + d, num_bins)
        reach = F.pad(rows[..., lo:hi], (d, d), value=float("inf"))  # bin k sits at k - lo + d
        # below: pooled[i] = max reach[i .. i + d - 2] = values[k - d .. k - 2] at i = k - lo;
        # above: the same window started at k - lo + d + 2, values[k + 2 .. k + d].
        pooled = F.max_pool1d(reach if side < 0 else reach[..., d + 2 :], d - 1, stride=1)
        out[..., first:stop] = pooled[..., first - lo : stop - lo]
    return out.reshape(values.shape)


def _within_neighbourhood(is_tonal: Tensor, half_width: Tensor) -> Tensor:
    """Bins within ±``half_width[k]`` of some tonal bin k (k itself included), ``(..., bins)`` bool."""
    num_bins = is_tonal.shape[-1]
    rows = is_tonal.reshape(-1, 1, num_bins)
    near = torch.zeros_like(rows)
    for first, stop, d in _neighbourhood_regions(half_width):
        # reach[i] = tonal bins first - 2d + i .. first + i, which bin first - d + i is within d of
        reach = F.max_pool1d(F.pad(rows[..., first:stop].to(torch.float32), (2 * d, 2 * d)), 2 * d + 1, stride=1)
        lo, hi = max(first - d, 0), min(stop + d, num_bins)
        near[..., lo:hi] |= reach[..., lo - first + d : hi - first + d] > 0
    return near.reshape(is_tonal.shape)


def find_maskers(
    spectrum_db: Tensor,
    frequency_hz: Tensor,
    bark: Tensor,
    tonal_prominence_db: float = 7.0,
) -> tuple[Tensor, Tensor]:
    """Step 1: tonal and noise (non-tonal) maskers of each frame, as dense level maps.

    Args:
        spectrum_db: ``(..., frames, bins)`` levels in dB SPL.
        frequency_hz, bark: ``(bins,)`` bin centre frequencies and their Bark values.
        tonal_prominence_db: how far a tonal peak must exceed its neighbourhood (7 dB).

    Returns:
        ``(tonal_db, noise_db)``, each ``(..., frames, bins)``: a masker's level in dB SPL at
        the bin where it sits, -inf at bins without a masker of that kind.

    Tonal maskers: bin k with ``P[k] > P[k-1]``, ``P[k] >= P[k+1]`` and
    ``P[k] >= P[k±j] + 7 dB`` for every j in 2..Δk (`tonal_neighbourhood_bins`); its level is
    the power sum of bins k-1, k, k+1. Peaks whose neighbourhood crosses either end of the
    spectrum, and DC, are not tonal.

    Noise maskers (modelled, one per critical band): the power sum of every bin of the band
    that is not within ±Δk of a tonal masker, placed at the band's geometric-mean bin.
    Critical bands are 1 Bark wide: band b holds the bins with ``b <= z < b + 1``. DC (bin 0)
    is no sound and is left out of the sums.
    """
    num_bins = spectrum_db.shape[-1]
    bin_hz = float(frequency_hz[1] - frequency_hz[0])
    half_width = tonal_neighbourhood_bins(frequency_hz, bin_hz).to(spectrum_db.device)  # (bins,)
    inf = float("inf")

    # Tonal: a local maximum that dominates its neighbourhood. Out-of-range neighbours are
    # +inf so that a peak whose neighbourhood leaves the spectrum never qualifies. Dominating
    # every neighbour by 7 dB is dominating the loudest one (rounding of P[k] - P[j] is
    # monotone in P[j], so this is the same test bit for bit).
    is_tonal = (spectrum_db > _shift_bins(spectrum_db, -1, inf)) & (spectrum_db >= _shift_bins(spectrum_db, 1, inf))
    for side in (-1, 1):
        is_tonal &= spectrum_db - _neighbourhood_max(spectrum_db, half_width, side) >= tonal_prominence_db
    is_tonal[..., 0] = False
    neg_inf = -inf
    tonal_level = _db_power_sum(
        _shift_bins(spectrum_db, -1, neg_inf), spectrum_db, _shift_bins(spectrum_db, 1, neg_inf)
    )
    tonal_db = torch.where(is_tonal, tonal_level, torch.full_like(spectrum_db, neg_inf))

    # Noise: bins outside every tonal neighbourhood, summed per critical band.
    near_tonal = _within_neighbourhood(is_tonal, half_width)
    residual_power = torch.where(near_tonal, 0.0, torch.pow(10.0, spectrum_db / 10.0))
    residual_power[..., 0] = 0.0

    band = torch.floor(bark).long().to(spectrum_db.device)  # (bins,)
    num_bands = int(band.max()) + 1
    band_power = torch.zeros(*spectrum_db.shape[:-1], num_bands, dtype=spectrum_db.dtype, device=spectrum_db.device)
    band_power.index_add_(-1, band, residual_power)
    # Geometric-mean bin of each band (over its bins k >= 1), as in the standard.
    float64 = {"dtype": torch.float64, "device": spectrum_db.device}
    log_bin = torch.log(torch.arange(num_bins, **float64).clamp_min(1.0))
    counted = torch.ones(num_bins, **float64)
    counted[0] = 0.0
    log_sum = torch.zeros(num_bands, **float64).index_add_(0, band, log_bin * counted)
    count = torch.zeros(num_bands, **float64).index_add_(0, band, counted)
    has_bins = count > 0
    centre_bin = torch.round(torch.exp(log_sum[has_bins] / count[has_bins])).long()
    noise_db = torch.full_like(spectrum_db, neg_inf)
    noise_db[..., centre_bin] = 10.0 * torch.log10(band_power[..., has_bins])
    return tonal_db, noise_db


def filter_maskers(
    tonal_db: Tensor,
    noise_db: Tensor,
    bark: Tensor,
    quiet_threshold_db: Tensor,
    separation_bark: float = 0.5,
    max_chunk_elements: int = 1 << 22,
) -> tuple[Tensor, Tensor]:
    """Step 2 (decimation): drop maskers below the threshold in quiet, then keep the strongest within 0.5 Bark.

    Args:
        tonal_db, noise_db: ``(..., frames, bins)`` from `find_maskers`.
        bark, quiet_threshold_db: ``(bins,)``.

    Returns:
        ``(tonal_db, noise_db)`` of the same shape with the removed maskers set to -inf.

    Rules, in order: (1) a masker survives only if its level >= the threshold in quiet at
    its bin; (2) a tonal and a noise masker on the same bin: the stronger stays (tonal on a
    tie); (3) a masker survives only if no other surviving-from-(1) masker within
    ``separation_bark`` (strictly less than 0.5 Bark away) is stronger; on equal levels the
    lower-frequency one stays. Rule (3) compares every masker with all its neighbours at
    once rather than sweeping pairs from low to high frequency as the standard's text does;
    the two agree except in chains (A > B > C, each < 0.5 Bark from the next but A and C
    further apart), where this version also drops C.
    """
    neg_inf = float("-inf")
    tonal_db = torch.where(tonal_db >= quiet_threshold_db, tonal_db, neg_inf)
    noise_db = torch.where(noise_db >= quiet_threshold_db, noise_db, neg_inf)
    tonal_wins_bin = tonal_db >= noise_db
    level_db = torch.maximum(tonal_db, noise_db)  # the one masker left on each bin

    # Compare the maskers of each frame pairwise, as a padded list (a few dozen per frame)
    # rather than over all pairs of bins; frames in blocks to bound memory.
    shape, num_bins = level_db.shape, level_db.shape[-1]
    level_rows = level_db.reshape(-1, num_bins)
    bark = bark.to(level_db.device, level_db.dtype)
    survives = torch.zeros_like(level_rows, dtype=torch.bool)
    for rows, masker_db, masker_bin in _masker_lists(level_rows, max_chunk_elements):
        masker_bark = bark[masker_bin]
        present = masker_db > neg_inf  # (rows, maskers)
        close = (masker_bark.unsqueeze(-1) - masker_bark.unsqueeze(-2)).abs() < separation_bark
        other_db, own_db = masker_db.unsqueeze(-2), masker_db.unsqueeze(-1)  # [.., j, i]: own j, other i
        lower_bin = masker_bin.unsqueeze(-2) < masker_bin.unsqueeze(-1)
        other_wins = (other_db > own_db) | ((other_db == own_db) & lower_bin)
        beaten = (close & other_wins & present.unsqueeze(-2)).any(-1)  # (rows, maskers)
        survives[rows] = survives[rows].scatter(-1, masker_bin, present & ~beaten)
    survives = survives.reshape(shape)

    tonal_db = torch.where(survives & tonal_wins_bin, tonal_db, neg_inf)
    noise_db = torch.where(survives & ~tonal_wins_bin, noise_db, neg_inf)
    return tonal_db, noise_db


def _masker_lists(level_rows: Tensor, max_chunk_elements: int):
    """Yield ``(rows, masker_db, masker_bin)`` over blocks of rows of ``level_rows`` (rows, bins).

    ``masker_db`` and ``masker_bin`` are ``(block_rows, maskers)``: each row's maskers (bins
    whose level is not -inf), padded with -inf up to the block's largest count. Blocks hold at
    most ``max_chunk_elements`` entries of ``block_rows * maskers * max(maskers, bins)``.
    """
    num_rows, num_bins = level_rows.shape
    present_count = (level_rows > float("-inf")).sum(-1)
    largest = max(int(present_count.max()) if num_rows else 0, 1)
    rows_per_chunk = max(1, max_chunk_elements // (largest * max(largest, num_bins)))
    for start in range(0, num_rows, rows_per_chunk):
        rows = slice(start, min(start + rows_per_chunk, num_rows))
        count = max(int(present_count[rows].max()), 1)
        masker_db, masker_bin = torch.topk(level_rows[rows], count, dim=-1)
        yield rows, masker_db, masker_bin


def upper_spreading_slope_db_per_bark(masker_db: Tensor) -> Tensor:
    """Slope of the spreading function above a masker of level ``masker_db`` (dB SPL), elementwise.

    ``-27 + 0.37 max(P - 40, 0)`` dB/Bark: it flattens for louder maskers (upward spread of
    masking) and is capped at 0 so that a masker above 113 dB SPL never masks more far away
    than near. Below the masker the slope is 27 dB/Bark whatever its level.
    """
    return (-27.0 + 0.37 * (masker_db - 40.0).clamp_min(0.0)).clamp_max(0.0)


def masking_index_db(masker_bark: Tensor, is_tonal: Tensor) -> Tensor:
    """Offset of a masker's threshold below its level: tonal ``-6.025 - 0.275 z``, noise ``-2.025 - 0.175 z``."""
    return torch.where(is_tonal, -6.025 - 0.275 * masker_bark, -2.025 - 0.175 * masker_bark)


def individual_thresholds(
    masker_db: Tensor, masker_bark: Tensor, masker_is_tonal: Tensor, bark: Tensor, unit: float = 1.0
) -> Tensor:
    """Step 3: each masker's threshold over all bins, ``(..., maskers) -> (..., maskers, bins)``, times ``unit``.

    ``T[j, i] = P_j + masking_index(z_j) + SF(z_i - z_j, P_j)`` with the two-slope spreading
    function (the form Qin et al. 2019 use for model 1), dz = z_maskee - z_masker in Bark:
    ``SF(dz, P) = 27 dz`` for dz < 0 (maskee below the masker) and
    ``upper_spreading_slope_db_per_bark(P) dz`` for dz >= 0. One of the two products is
    negative and the other not on either side of the masker, so SF is their minimum.
    ``unit`` scales the result (``ln(10) / 10`` gives natural-log units, which
    `global_threshold` exponentiates). A masker with level -inf (padding) gives -inf everywhere.
    """
    peak = unit * (masker_db + masking_index_db(masker_bark, masker_is_tonal))  # (..., maskers)
    upper_slope = unit * upper_spreading_slope_db_per_bark(masker_db)
    distance = bark - masker_bark.unsqueeze(-1)  # (..., maskers, bins)
    spread = torch.minimum(distance * (27.0 * unit), distance * upper_slope.unsqueeze(-1))
    return spread.add_(peak.unsqueeze(-1))


def global_threshold(
    tonal_db: Tensor,
    noise_db: Tensor,
    bark: Tensor,
    quiet_threshold_db: Tensor,
    max_chunk_elements: int = 1 << 20,
) -> Tensor:
    """Step 4: ``10 log10(10^(T_q/10) + sum_j 10^(T_j/10))`` per bin, ``(..., frames, bins)``.

    Surviving maskers (at most one per 0.5 Bark, so about 50 per frame) are gathered into a
    padded list per frame and their individual thresholds summed in power. Frames are
    processed in blocks of at most ``max_chunk_elements`` list-by-bin entries (a block that
    stays in the processor's cache); each block is fully vectorised. Written as
    ``T_q + 10 log10(1 + 10^(-T_q/10) sum 10^(T_j/10))`` so that a frame without maskers
    returns exactly the threshold in quiet.

    The individual thresholds are taken in natural-log units, so that ``10^(T_j/10)`` is
    one exponential done in place.
    """
    shape = tonal_db.shape
    num_bins = shape[-1]
    tonal_level_rows = tonal_db.reshape(-1, num_bins)
    level_rows = torch.maximum(tonal_level_rows, noise_db.reshape(-1, num_bins))  # filtered: one kind per bin
    tonal_rows = tonal_level_rows > float("-inf")
    bark = bark.to(level_rows.device, level_rows.dtype)
    quiet_threshold_db = quiet_threshold_db.to(level_rows.device, level_rows.dtype)

    per_db = math.log(10.0) / 10.0  # 10^(L/10) = exp(per_db L)
    quiet_scale = torch.exp(-per_db * quiet_threshold_db)  # (bins,)
    out = []
    for rows, masker_db, masker_bin in _masker_lists(level_rows, max_chunk_elements):
        is_tonal = torch.gather(tonal_rows[rows], -1, masker_bin)
        thresholds = individual_thresholds(masker_db, bark[masker_bin], is_tonal, bark, unit=per_db)
        power = thresholds.exp_().sum(-2)  # (rows, bins): sum_j 10^(T_j/10)
        out.append(quiet_threshold_db + torch.log1p(power * quiet_scale) / per_db)
    return torch.cat(out, dim=0).reshape(shape)


def frequency_masking_threshold_db_spl(
    spectrum_db: Tensor,
    sample_rate_hz: float,
    n_fft: int,
    tonal_prominence_db: float = 7.0,
    separation_bark: float = 0.5,
) -> Tensor:
    """Global masking threshold of simplified MPEG-1 psychoacoustic model 1, ``(..., frames, bins)``.

    find_maskers -> filter_maskers -> individual_thresholds -> global_threshold, every
    step vectorised over batch and frames. The result is at least the threshold in quiet
    everywhere and equals it in a silent frame. Not differentiable (computed from the clean
    music; the input is detached).
    """
    spectrum_db = spectrum_db.detach()
    frequency_hz = bin_frequencies_hz(sample_rate_hz, n_fft, device=spectrum_db.device, dtype=spectrum_db.dtype)
    if spectrum_db.shape[-1] != frequency_hz.shape[0]:
        raise SettingsError(
            f"the spectrum has {spectrum_db.shape[-1]} frequency bins "
            f"but a {n_fft}-point analysis has {frequency_hz.shape[0]}"
        )
    bark = hz_to_bark(frequency_hz)
    quiet_threshold_db = absolute_threshold_db_spl(frequency_hz)
    tonal_db, noise_db = find_maskers(spectrum_db, frequency_hz, bark, tonal_prominence_db)
    tonal_db, noise_db = filter_maskers(tonal_db, noise_db, bark, quiet_threshold_db, separation_bark)
    return global_threshold(tonal_db, noise_db, bark, quiet_threshold_db)


# --------------------------------------------------------------------------- temporal masking


def temporal_masking_db_spl(
    threshold_db: Tensor,
    hop_ms: float,
    pre_masking_ms: float = 20.0,
    post_masking_ms: float = 200.0,
    quiet_threshold_db: Tensor | float = 0.0,
) -> Tensor:
    """Spread a threshold over time: pre- and post-masking, ``(..., frames, bins) -> (..., frames, bins)``.

    Model (after Zwicker & Fastl, *Psychoacoustics: Facts and Models*, 3rd ed., §4.4:
    pre-masking lasts about 20 ms, post-masking about 200 ms, and post-masking curves of
    every masker level reach the threshold in quiet at its end): the threshold of frame m
    reaches frame m + n (n frames of ``hop_ms`` away) with its excess over the threshold in
    quiet shrinking linearly in dB with the time distance, to zero at ``post_masking_ms``
    after and ``pre_masking_ms`` before:

        T_spread(m -> m + n) = T_q + (T[m] - T_q)_+ * (1 - |n| hop_ms / window_ms)

    with window_ms = post_masking_ms for n > 0 and pre_masking_ms for n < 0. The result is
    the maximum (not the power sum, which would let many frames add up) over the frame's own
    threshold and every spread threshold. Real forward masking decays faster at first (about
    linearly in log time, Jesteadt et al. 1982), so this linear model is generous halfway
    through the window: shorten post_masking_ms for more safety margin.

    Args:
        threshold_db: frequency masking threshold in dB SPL.
        hop_ms: time between frames.
        quiet_threshold_db: the level the spread decays to, broadcastable to
            ``(..., frames, bins)``; pass the threshold in quiet per bin. The default 0 dB
            SPL is the nominal threshold at 1 kHz.
    """
    if hop_ms <= 0 or pre_masking_ms < 0 or post_masking_ms < 0:
        raise SettingsError("the hop and the pre- and post-masking durations must be positive")
    quiet_threshold_db = torch.as_tensor(quiet_threshold_db, dtype=threshold_db.dtype, device=threshold_db.device)
    excess_db = (threshold_db - quiet_threshold_db).clamp_min(0.0)
    num_frames = threshold_db.shape[-2]
    result = threshold_db
    for window_ms, direction in ((post_masking_ms, 1), (pre_masking_ms, -1)):
        for distance in range(1, num_frames):
            remaining = 1.0 - distance * hop_ms / window_ms if window_ms > 0 else 0.0
            if remaining <= 0.0:
                break
            spread = quiet_threshold_db + excess_db * remaining
            if direction > 0:  # frame m masks frame m + distance
                spread = F.pad(spread[..., : num_frames - distance, :], (0, 0, distance, 0), value=float("-inf"))
            else:  # frame m masks frame m - distance
                spread = F.pad(spread[..., distance:, :], (0, 0, 0, distance), value=float("-inf"))
            result = torch.maximum(result, spread)
    return result


# --------------------------------------------------------------------------- composition


def masking_threshold_db_spl(
    waveform: Tensor,
    sample_rate_hz: float,
    n_fft: int,
    hop_length: int,
    full_scale_db_spl: float = FULL_SCALE_DB_SPL,
    temporal: bool = True,
    pre_masking_ms: float = 20.0,
    post_masking_ms: float = 200.0,
) -> Tensor:
    """Masking threshold of a waveform in dB SPL, ``(..., time) -> (..., frames, n_fft // 2 + 1)``.

    `spectrum_db_spl` -> `frequency_masking_threshold_db_spl` -> (if ``temporal``)
    `temporal_masking_db_spl`, decaying towards the threshold in quiet of each bin. Noise
    whose `spectrum_db_spl` (same n_fft, hop and calibration) stays below it is masked.
    No gradient.
    """
    with torch.no_grad():
        spectrum_db = spectrum_db_spl(waveform, n_fft, hop_length, full_scale_db_spl)
        threshold_db = frequency_masking_threshold_db_spl(spectrum_db, sample_rate_hz, n_fft)
        if temporal:
            frequency_hz = bin_frequencies_hz(sample_rate_hz, n_fft, device=waveform.device, dtype=threshold_db.dtype)
            threshold_db = temporal_masking_db_spl(
                threshold_db,
                hop_ms=1000.0 * hop_length / sample_rate_hz,
                pre_masking_ms=pre_masking_ms,
                post_masking_ms=post_masking_ms,
                quiet_threshold_db=absolute_threshold_db_spl(frequency_hz),
            )
    return threshold_db


def noise_to_mask_ratio_db(noise_spectrum_db: Tensor, threshold_db: Tensor) -> Tensor:
    """Noise-to-mask ratio per bin in dB: ``noise level - masking threshold`` (elementwise). Below 0 = masked."""
    return noise_spectrum_db - threshold_db


# --------------------------------------------------------------------------- MIDI velocity (Eq. 6)


def velocity_to_db_spl(velocity: Tensor | float, full_velocity_db_spl: Tensor | float) -> Tensor:
    """Level in dB SPL of a note of MIDI velocity ``velocity`` (0..127), elementwise.

    DLS Level 1 (MIDI Manufacturers Association, 1997; Dannenberg, ICMC 2006) defines the
    attenuation of a note of velocity v as ``40 log10(v / 127)`` dB relative to velocity 127.
    With ``full_velocity_db_spl`` = L_127, the level a note reaches at velocity 127:

        L(v) = L_127 + 40 log10(v / 127)

    Velocity 0 gives -inf (it is a note-off in MIDI).
    """
    return _as_tensor(full_velocity_db_spl) + 40.0 * torch.log10(_as_tensor(velocity) / 127.0)


def db_spl_to_velocity(level_db_spl: Tensor | float, full_velocity_db_spl: Tensor | float) -> Tensor:
    """MIDI velocity whose note reaches ``level_db_spl``: the paper's H(·) (Eq. 6, read per DLS Level 1).

    Inverting ``L = L_127 + 40 log10(v / 127)`` (see `velocity_to_db_spl`):

        log10(v / 127) = (L - L_127) / 40   =>   v = 127 * 10^((L - L_127) / 40)

    so -40 dB relative to L_127 is velocity 12.7 and -84.2 dB is velocity 1. The result is
    real-valued (differentiable inside the range) and clamped to [0, 127]. Velocity 0 is a
    note-off in MIDI, so 1 is the smallest velocity that sounds: a caller that rounds to an
    integer velocity for a note that must sound has to round up to at least 1.
    """
    velocity = 127.0 * torch.pow(10.0, (_as_tensor(level_db_spl) - _as_tensor(full_velocity_db_spl)) / 40.0)
    return velocity.clamp(0.0, 127.0)
