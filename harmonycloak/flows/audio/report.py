"""The report of a protected audio file: a JSON of settings and measurements, and a picture.

The picture shows, for a 30-second excerpt from the middle of the song (mono mix), the
spectrogram of the original, of the protected version and of the noise, and the noise's
level against the music's global masking threshold (noise-to-mask ratio): blue where the
noise is hidden, red where it stands above the threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harmonycloak.flows.results import report_paths, save_figure, write_json_report
from harmonycloak.metrics.perceptual import clipped_sample_count, noise_to_mask_ratio_stats_db, snr_db
from harmonycloak.psycho.masker import PsychoacousticModel
from harmonycloak.settings import ProtectionSettings

PICTURE_EXCERPT_S = 30.0


def audio_report(input_path: Path, output_path: Path, settings: ProtectionSettings, original: np.ndarray,
                 protected: np.ndarray, sample_rate_hz: int, summary: dict, elapsed_s: float) -> dict:
    """Everything worth knowing about one protection run, JSON-ready."""
    duration_s = original.shape[-1] / sample_rate_hz
    return {
        "kind": "audio",
        "input": str(input_path),
        "output": str(output_path),
        "settings": settings.as_report(),
        "seed": settings.seed,
        "duration_s": duration_s,
        "elapsed_s": elapsed_s,
        "real_time_factor": elapsed_s / duration_s,
        "snr_db": snr_db(original, protected),
        # on the middle 30 s, as the picture: the masking model costs seconds per second of audio;
        # `harmonycloak verify` measures the whole song
        "noise_to_mask_ratio_db": noise_to_mask_ratio_stats_db(*_middle_excerpt(original, protected, sample_rate_hz)[1:],
                                                                sample_rate_hz),
        "clipped_samples": {"original": clipped_sample_count(original), "protected": clipped_sample_count(protected)},
        **summary,
    }


def write_report_files(report: dict, original: np.ndarray, protected: np.ndarray, sample_rate_hz: int,
                       output_path: Path, picture: bool = True) -> tuple[Path, Path | None]:
    """Write <output stem>.report.json and (if `picture`) .report.png beside the output; returns
    their paths (None for a picture not drawn)."""
    json_path = write_json_report(report, output_path)
    if not picture:
        return json_path, None
    picture_path = report_paths(output_path)[1]
    plot_protection(original, protected, sample_rate_hz, picture_path, title=Path(report["output"]).name)
    return json_path, picture_path


def plot_protection(original: np.ndarray, protected: np.ndarray, sample_rate_hz: int, path: Path, title: str = "") -> Path:
    """Spectrograms of original, protected, noise, and the noise-to-mask ratio, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start_s, original, protected = _middle_excerpt(original, protected, sample_rate_hz)
    mono = lambda x: torch.from_numpy(np.ascontiguousarray(x.mean(axis=0), dtype=np.float32))
    clean, cloaked = mono(original), mono(protected)
    model = PsychoacousticModel(sample_rate_hz)
    with torch.no_grad():
        panels = {
            "original (dB SPL)": model.spectrum_db(clean),
            "protected (dB SPL)": model.spectrum_db(cloaked),
            "noise (dB SPL)": model.spectrum_db(cloaked - clean),
        }
        threshold = model.masking_threshold_db(clean)
    nmr = panels["noise (dB SPL)"] - threshold
    frames = threshold.shape[0]
    extent = [start_s, start_s + original.shape[-1] / sample_rate_hz, 0, sample_rate_hz / 2000]
    figure, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True, constrained_layout=True)
    for axis, (name, values) in zip(axes, panels.items()):
        image = axis.imshow(values.T.numpy(), origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=-10, vmax=100)
        axis.set_title(name)
        axis.set_ylabel("kHz")
        figure.colorbar(image, ax=axis)
    image = axes[3].imshow(nmr.T.numpy(), origin="lower", aspect="auto", extent=extent, cmap="coolwarm", vmin=-40, vmax=40)
    axes[3].set_title("noise − masking threshold (dB): above 0 = audible in principle")
    axes[3].set_ylabel("kHz")
    axes[3].set_xlabel(f"time (s), {frames} frames")
    figure.colorbar(image, ax=axes[3])
    figure.suptitle(title)
    return save_figure(figure, path)


def _middle_excerpt(original: np.ndarray, protected: np.ndarray, sample_rate_hz: int
                    ) -> tuple[float, np.ndarray, np.ndarray]:
    """(start in seconds, original, protected) of the middle PICTURE_EXCERPT_S seconds."""
    length = min(original.shape[-1], round(PICTURE_EXCERPT_S * sample_rate_hz))
    first = (original.shape[-1] - length) // 2
    return first / sample_rate_hz, original[:, first : first + length], protected[:, first : first + length]
