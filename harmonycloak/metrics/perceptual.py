"""How audible a change to a piece of music is: pure functions, arrays in, numbers out.

Each function takes the original and the protected audio as numpy arrays or torch tensors,
``(time,)`` for mono or ``(channels, time)`` as `harmonycloak.music.Audio` stores them, with
samples in [-1, 1]. "Noise" is always ``protected - original``, sample by sample. No single
number tells audibility (docs/audibility.md): report the noise-to-mask ratio beside ViSQOL, the
loudness change and where the noise's energy lies.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch

from harmonycloak.errors import AudioFileError
from harmonycloak.psycho import functional as PF
from harmonycloak.psycho.masker import PsychoacousticModel
from harmonycloak.resampling import resample

VISQOL_SAMPLE_RATE_HZ = 48000  # ViSQOL v3 audio mode is defined at 48 kHz
_CHUNK_FRAMES = 1 << 20  # long songs are summed a chunk at a time, so no float64 copy of the whole


def _channels(samples, name: str = "audio", dtype=np.float64) -> np.ndarray:
    """``(time,)`` or ``(channels, time)`` array or tensor -> ``(channels, time)`` of `dtype` (None: as is)."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    array = np.asarray(samples, dtype=dtype)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise AudioFileError(f"the {name} must be mono (time,) or (channels, time), not of shape {array.shape}")
    return array


def _pair(original, protected, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as ``(channels, time)`` of `dtype` (None: as is), checked to have the same shape."""
    original, protected = _channels(original, "original audio", dtype), _channels(protected, "protected audio", dtype)
    if original.shape != protected.shape:
        raise AudioFileError(
            f"the protected audio has {protected.shape[0]} channel(s) of {protected.shape[1]} samples "
            f"but the original has {original.shape[0]} of {original.shape[1]}; they cannot be compared"
        )
    return original, protected


def snr_db(original, protected) -> float:
    """Signal-to-noise ratio in dB: ``10 log10(sum(original^2) / sum((protected - original)^2))``.

    Sums run over all channels and samples. Identical signals give +inf; a silent original
    with any noise gives -inf; empty inputs give NaN.
    """
    original, protected = _pair(original, protected, dtype=None)
    if original.size == 0:
        return float("nan")
    signal_energy = noise_energy = 0.0
    for first in range(0, original.shape[1], _CHUNK_FRAMES):  # float64 sums, a chunk at a time (memory)
        clean = original[:, first : first + _CHUNK_FRAMES].astype(np.float64)
        signal_energy += float(np.sum(clean**2))
        noise_energy += float(np.sum((protected[:, first : first + _CHUNK_FRAMES] - clean) ** 2))
    if noise_energy == 0.0:
        return math.inf
    if signal_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def _summary_db(nmr_db: np.ndarray, prefix: str = "") -> dict[str, float]:
    """mean (power mean), median, p95 (nearest rank), max and fraction > 0 dB of NMR values in dB."""
    if nmr_db.size == 0:
        nan = float("nan")
        return {f"{prefix}{key}": nan for key in ("mean_db", "median_db", "p95_db", "max_db", "fraction_above_0db")}
    with np.errstate(divide="ignore"):
        mean_db = float(10.0 * np.log10(np.mean(np.power(10.0, nmr_db / 10.0))))  # -inf if all -inf
    return {
        f"{prefix}mean_db": mean_db,
        f"{prefix}median_db": float(np.quantile(nmr_db, 0.5, method="inverted_cdf")),
        f"{prefix}p95_db": float(np.quantile(nmr_db, 0.95, method="inverted_cdf")),
        f"{prefix}max_db": float(np.max(nmr_db)),
        f"{prefix}fraction_above_0db": float(np.mean(nmr_db > 0.0)),
    }


def noise_to_mask_ratio_stats_db(
    original,
    protected,
    sample_rate_hz: float,
    band_hz: tuple[float, float] = (50.0, 14000.0),
    model: PsychoacousticModel | None = None,
) -> dict[str, float]:
    """Noise-to-mask ratio (NMR) of ``protected - original`` against the original's masking threshold.

    Per channel, the noise's level in dB SPL per time-frequency bin (`PsychoacousticModel.spectrum_db`
    without a floor, so an exactly zero noise bin is -inf) minus the masking threshold of the
    same channel of the original (`PsychoacousticModel.masking_threshold_db`, frequency and
    temporal masking, full scale = 96 dB SPL). Only bins whose centre lies in ``band_hz``
    (default 50 Hz to 14 kHz, where the masking model is trusted; what lies outside is measured
    by `noise_energy_share_by_region`) are counted; all channels' frames and bins are pooled.

    Per bin, noise spread over many bins of a critical band reads as masked even when its
    sum would not be (the ear integrates a critical band): per 1-Bark band and frame the
    ``band_*`` values compare the band's noise power (sum over its bins in band_hz, divided by
    the Hann window's equivalent noise bandwidth of 1.5 bins so that a sine reads its own
    level) with the lowest threshold in the band, as MPEG-1 Layers I/II compare subband noise
    with the subband's minimum threshold. Stricter, and closer to what a listener hears for
    broadband noise.

    Returns a dict (dB unless said), for bins and, prefixed ``band_``, for bands:
        mean_db: ``10 log10(mean of the linear ratios 10^(NMR/10))`` (the power mean, as
            PEAQ's total NMR; -inf for zero noise);
        median_db, p95_db: nearest-rank percentiles of NMR in dB;
        max_db: the largest NMR;
        fraction_above_0db: share with NMR > 0 dB (audible by the model); 0.0 for zero noise;
        num_bins, num_bands: how many time-frequency bins and band-frames were counted.
    NaN (counts 0) if ``band_hz`` holds no bin or the signals are empty.
    """
    original, protected = _pair(original, protected)
    model = model if model is not None else PsychoacousticModel(sample_rate_hz)
    return noise_to_mask_ratio_stats_from_db(*masking_spectra_db(original, protected, model), model, band_hz)


def masking_spectra_db(original, protected, model: PsychoacousticModel) -> tuple[np.ndarray, np.ndarray]:
    """(masking threshold of the original, level of the noise ``protected - original``), each
    (channels, frames, bins) in dB SPL: the one masking computation that the NMR statistics
    and the report's picture both read. The noise has no floor (an exactly zero bin is -inf)."""
    original, protected = _pair(original, protected)
    if original.shape[1] == 0:
        empty = np.zeros((original.shape[0], 0, model.n_fft // 2 + 1))
        return empty, empty.copy()
    music = torch.from_numpy(original).to(torch.float32)
    noise = torch.from_numpy(protected - original).to(torch.float32)
    with torch.no_grad():
        threshold_db = model.masking_threshold_db(music)  # (channels, frames, bins)
        noise_db = PF.spectrum_db_spl(
            noise, model.n_fft, model.hop_length, model.full_scale_db_spl, amplitude_floor=0.0
        )
    return threshold_db.numpy().astype(np.float64), noise_db.numpy().astype(np.float64)


def noise_to_mask_ratio_stats_from_db(threshold_db: np.ndarray, noise_db: np.ndarray, model: PsychoacousticModel,
                                      band_hz: tuple[float, float] = (50.0, 14000.0)) -> dict[str, float]:
    """`noise_to_mask_ratio_stats_db` from `masking_spectra_db`'s arrays (channels, frames, bins)."""
    in_band = _bins_in(model, band_hz)
    if threshold_db.shape[1] == 0 or not in_band.any():
        return {**_summary_db(np.zeros(0)), "num_bins": 0, **_summary_db(np.zeros(0), "band_"), "num_bands": 0}
    nmr_db = PF.noise_to_mask_ratio_db(noise_db[..., in_band], threshold_db[..., in_band]).ravel()
    band_nmr_db = band_noise_to_mask_ratio_db(threshold_db, noise_db, model, band_hz)[0].ravel()
    return {
        **_summary_db(nmr_db),
        "num_bins": int(nmr_db.size),
        **_summary_db(band_nmr_db, "band_"),
        "num_bands": int(band_nmr_db.size),
    }


def band_noise_to_mask_ratio_db(threshold_db: np.ndarray, noise_db: np.ndarray, model: PsychoacousticModel,
                                band_hz: tuple[float, float] = (50.0, 14000.0)) -> tuple[np.ndarray, np.ndarray]:
    """The band check: per frame and 1-Bark band, the noise's power summed over the band's bins
    in `band_hz` (divided by the Hann window's noise bandwidth, 1.5 bins, so that a sine reads its
    own level) over the band's lowest threshold, in dB, from `masking_spectra_db`'s arrays
    (channels, frames, bins). Returns (NMR (channels, frames, Z), each bin's band index into Z
    (bins,), −1 outside `band_hz`)."""
    in_band = _bins_in(model, band_hz)
    band_of_bin = np.floor(model.bark.cpu().numpy()).astype(int)
    bands = np.unique(band_of_bin[in_band])
    index_of_bin = np.where(in_band, np.searchsorted(bands, band_of_bin), -1)
    window = torch.hann_window(model.n_fft, periodic=True, dtype=torch.float64)
    noise_bandwidth_bins = float(model.n_fft * (window**2).sum() / window.sum() ** 2)  # 1.5 for Hann
    noise_power = np.power(10.0, noise_db / 10.0)
    band_nmr_db = []
    with np.errstate(divide="ignore"):
        for index in range(len(bands)):  # about 25 bands, each vectorised over channels and frames
            members = index_of_bin == index
            band_noise_db = 10.0 * np.log10(noise_power[..., members].sum(-1) / noise_bandwidth_bins)
            band_nmr_db.append(band_noise_db - threshold_db[..., members].min(-1))
    return np.stack(band_nmr_db, axis=-1), index_of_bin


def _bins_in(model: PsychoacousticModel, band_hz: tuple[float, float]) -> np.ndarray:
    return ((model.frequency_hz >= band_hz[0]) & (model.frequency_hz <= band_hz[1])).cpu().numpy()


BS1770_MAX_CHANNELS = 5


def loudness_change_lu(original, protected, sample_rate_hz: float) -> float:
    """Change of integrated loudness, ``L(protected) - L(original)`` in LU (ITU-R BS.1770-4, via pyloudnorm).

    Integrated loudness gates 400 ms blocks, so clips shorter than 400 ms have none: NaN.
    NaN as well when either signal is so quiet that every block is gated out (-inf LUFS), and
    for more than five channels (BS.1770 weighs L, R, C, Ls and Rs only).
    """
    import pyloudnorm

    original, protected = _pair(original, protected)
    if original.shape[1] < 0.4 * sample_rate_hz or original.shape[0] > BS1770_MAX_CHANNELS:
        return float("nan")
    meter = pyloudnorm.Meter(int(sample_rate_hz))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns on "possible clipping"; clipping has its own metric
        original_lufs = meter.integrated_loudness(original.T)
        protected_lufs = meter.integrated_loudness(protected.T)
    if not (math.isfinite(original_lufs) and math.isfinite(protected_lufs)):
        return float("nan")
    return float(protected_lufs - original_lufs)


def clipped_sample_count(samples, threshold: float = 1.0) -> int:
    """Number of samples (over all channels) with ``|x| >= threshold``.

    At 1.0 these are the samples a fixed-point file cannot hold (16-bit PCM tops out at
    32767/32768): they clip on writing.
    """
    samples = _channels(samples, dtype=None)
    return sum(int(np.count_nonzero(np.abs(samples[:, first : first + _CHUNK_FRAMES]) >= threshold))
               for first in range(0, samples.shape[1], _CHUNK_FRAMES))


@functools.lru_cache(maxsize=1)
def _visqol_audio_api():
    """One ViSQOL audio-mode instance per process (it loads its SVR model once)."""
    from visqol import VisqolApi

    api = VisqolApi()
    api.create(mode="audio")
    return api


def visqol_mos(original, protected, sample_rate_hz: float, max_seconds: float | None = None) -> float:
    """ViSQOL v3 audio-mode MOS-LQO (1 to ~4.73; identical audio scores ~4.73), via visqol-python.

    Both signals are downmixed to mono (mean of channels) and resampled to 48 kHz, the rate
    ViSQOL's audio mode is defined at, with ``scipy.signal.resample_poly``. The pure-Python
    port takes about as long as the audio lasts (~20 s for 20 s on one core); ``max_seconds``
    scores only a centred excerpt of that length. Audio shorter than about 1 s is too short
    for ViSQOL's patches: NaN.
    """

    original, protected = _pair(original, protected)
    reference, degraded = original.mean(axis=0), protected.mean(axis=0)
    if max_seconds is not None and reference.size > max_seconds * sample_rate_hz:
        length = int(round(max_seconds * sample_rate_hz))
        start = (reference.size - length) // 2
        reference, degraded = reference[start : start + length], degraded[start : start + length]
    if sample_rate_hz != VISQOL_SAMPLE_RATE_HZ:
        reference = resample(reference, sample_rate_hz, VISQOL_SAMPLE_RATE_HZ)
        degraded = resample(degraded, sample_rate_hz, VISQOL_SAMPLE_RATE_HZ)
    if reference.size < VISQOL_SAMPLE_RATE_HZ:
        return float("nan")
    return float(_visqol_audio_api().measure_from_arrays(reference, degraded, VISQOL_SAMPLE_RATE_HZ).moslqo)


def noise_energy_share_by_region(
    original, protected, sample_rate_hz: float, low_hz: float = 50.0, high_hz: float = 14000.0
) -> dict[str, float]:
    """Share of the noise's energy below ``low_hz``, between, and above ``high_hz``.

    Energy per frequency from the one-sided power spectrum of the whole noise
    (``protected - original``) per channel, summed over channels (Parseval: DC and Nyquist
    counted once, other bins twice). Regions: ``f < low_hz``, ``low_hz <= f <= high_hz``,
    ``f > high_hz``. The masking model passes energy below 50 Hz (audible on good speakers,
    or removed by playback) and above 14 kHz (often dropped by lossy codecs) too easily
    (docs/audibility.md), so a large share there is a warning sign. Shares sum to 1; all NaN for
    zero noise.

    Returns ``{"low": ..., "mid": ..., "high": ...}``.
    """
    original, protected = _pair(original, protected)
    noise = protected - original
    num_samples = noise.shape[1]
    power = np.abs(np.fft.rfft(noise, axis=1)) ** 2  # (channels, bins)
    weight = np.full(power.shape[1], 2.0)
    weight[0] = 1.0
    if num_samples % 2 == 0 and num_samples > 0:
        weight[-1] = 1.0
    energy = (power * weight).sum(axis=0)
    frequency_hz = np.fft.rfftfreq(num_samples, d=1.0 / sample_rate_hz)
    total = float(energy.sum())
    if total == 0.0:
        nan = float("nan")
        return {"low": nan, "mid": nan, "high": nan}
    return {
        "low": float(energy[frequency_hz < low_hz].sum() / total),
        "mid": float(energy[(frequency_hz >= low_hz) & (frequency_hz <= high_hz)].sum() / total),
        "high": float(energy[frequency_hz > high_hz].sum() / total),
    }
