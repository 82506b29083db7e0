"""The report of a protected audio file: a JSON of settings and measurements, and a picture.

Both read one masking computation (`MaskingExcerpt`) of a 30-second excerpt from the middle
of the song: the original's masking threshold and the noise's level per channel, frame and
frequency bin. The JSON gives its noise-to-mask ratio statistics and a verdict; the picture
shows, for the same excerpt, the spectrogram of the original, of the protected version and of
the noise, and the noise's level against the masking threshold (noise-to-mask ratio): blue
where the noise is hidden, red where it stands above the threshold; a caption says so in
words, with the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harmonycloak.flows.results import figure_with_caption, report_paths, save_figure, write_json_report
from harmonycloak.flows.verdict import audio_verdict, verdict_json
from harmonycloak.metrics.perceptual import (
    clipped_sample_count,
    loudness_change_lu,
    masking_spectra_db,
    noise_to_mask_ratio_stats_from_db,
    snr_db,
)
from harmonycloak.psycho.masker import PsychoacousticModel
from harmonycloak.settings import ProtectionSettings

PICTURE_EXCERPT_S = 30.0


@dataclass
class MaskingExcerpt:
    """The masking computation of the middle `PICTURE_EXCERPT_S` seconds, which the JSON and
    the picture share."""

    start_s: float
    original: np.ndarray  # (channels, frames) the excerpt of the original
    protected: np.ndarray  # (channels, frames) the same excerpt, protected
    sample_rate_hz: int
    model: PsychoacousticModel
    threshold_db: np.ndarray  # (channels, STFT frames, bins) the original's masking threshold, dB SPL
    noise_db: np.ndarray  # (channels, STFT frames, bins) the noise's level, dB SPL (-inf where zero)

    @classmethod
    def of(cls, original: np.ndarray, protected: np.ndarray, sample_rate_hz: int) -> "MaskingExcerpt":
        length = min(original.shape[-1], round(PICTURE_EXCERPT_S * sample_rate_hz))
        first = (original.shape[-1] - length) // 2
        original, protected = original[:, first : first + length], protected[:, first : first + length]
        model = PsychoacousticModel(sample_rate_hz)
        threshold_db, noise_db = masking_spectra_db(original, protected, model)
        return cls(first / sample_rate_hz, original, protected, sample_rate_hz, model, threshold_db, noise_db)

    @property
    def duration_s(self) -> float:
        return self.original.shape[-1] / self.sample_rate_hz


def audio_report(input_path: Path, output_path: Path, settings: ProtectionSettings, original: np.ndarray,
                 protected: np.ndarray, sample_rate_hz: int, summary: dict, elapsed_s: float,
                 masking: MaskingExcerpt | None = None) -> dict:
    """Everything worth knowing about one protection run, JSON-ready; `masking` is the excerpt's
    masking computation when the caller has it already (it is computed here otherwise)."""
    settings = settings.resolved("audio")
    duration_s = original.shape[-1] / sample_rate_hz
    masking = masking or MaskingExcerpt.of(original, protected, sample_rate_hz)
    # on the middle 30 s, as the picture: the masking model costs seconds per second of audio;
    # `harmonycloak verify` measures the whole song
    audibility = {
        "noise_to_mask_ratio_db": noise_to_mask_ratio_stats_from_db(masking.threshold_db, masking.noise_db,
                                                                    masking.model),
        "loudness_change_lu": loudness_change_lu(masking.original, masking.protected, sample_rate_hz),
        "clipped_samples": {"original": clipped_sample_count(original), "protected": clipped_sample_count(protected)},
    }
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
        **audibility,
        "excerpt_s": [masking.start_s, masking.start_s + masking.duration_s],
        "verdict": verdict_json(audio_verdict(audibility["noise_to_mask_ratio_db"], audibility["loudness_change_lu"],
                                              settings.cloak, clipped_samples=audibility["clipped_samples"])),
        **summary,
    }


def write_report_files(report: dict, masking: MaskingExcerpt, output_path: Path,
                       picture: bool = True) -> tuple[Path, Path | None]:
    """Write <output stem>.report.json and (if `picture`) .report.png beside the output; returns
    their paths (None for a picture not drawn)."""
    json_path = write_json_report(report, output_path)
    if not picture:
        return json_path, None
    picture_path = report_paths(output_path)[1]
    plot_protection(masking, picture_path, title=Path(report["output"]).name, verdict=report.get("verdict"))
    return json_path, picture_path


def plot_protection(masking: MaskingExcerpt, path: Path, title: str = "", verdict: dict | None = None) -> Path:
    """Spectrograms of original, protected, noise, and the noise-to-mask ratio, as a PNG, with a
    caption that says what they show and the verdict. Channels are pooled by power (the noise
    against the threshold: by the channel where it stands highest)."""
    model = masking.model

    def pooled_spectrum_db(samples: np.ndarray) -> np.ndarray:  # (channels, N) → (frames, bins), power mean
        with torch.no_grad():
            levels = model.spectrum_db(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))).numpy()
        return 10 * np.log10(np.mean(10 ** (levels / 10), axis=0))

    with np.errstate(divide="ignore"):
        noise_pooled_db = 10 * np.log10(np.mean(10 ** (masking.noise_db / 10), axis=0))
    panels = {
        "original (dB SPL)": pooled_spectrum_db(masking.original),
        "protected (dB SPL)": pooled_spectrum_db(masking.protected),
        "noise (dB SPL)": noise_pooled_db,
    }
    nmr = np.max(masking.noise_db - masking.threshold_db, axis=0)  # (frames, bins), the worst channel
    frames = nmr.shape[0]
    extent = [masking.start_s, masking.start_s + masking.duration_s, 0, masking.sample_rate_hz / 2000]
    figure, axes, write_caption = figure_with_caption(4, (10, 13), caption_lines=6)
    for axis, (name, values) in zip(axes, panels.items()):
        image = axis.imshow(values.T, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=-10, vmax=100)
        axis.set_title(name)
        axis.set_ylabel("kHz")
        figure.colorbar(image, ax=axis)
    image = axes[3].imshow(nmr.T, origin="lower", aspect="auto", extent=extent, cmap="coolwarm", vmin=-40, vmax=40)
    axes[3].set_title("noise − masking threshold (dB): above 0 = audible in principle")
    axes[3].set_ylabel("kHz")
    axes[3].set_xlabel(f"time (s), {frames} frames")
    figure.colorbar(image, ax=axes[3])
    figure.suptitle(title)
    write_caption(picture_caption(masking, verdict))
    return save_figure(figure, path)


def picture_caption(masking: MaskingExcerpt, verdict: dict | None) -> str:
    """What the picture shows, in words, and the verdict (a few lines)."""
    lines = [
        f"What this shows: {masking.duration_s:.0f} s from the middle of the song "
        f"({masking.start_s:.1f}–{masking.start_s + masking.duration_s:.1f} s). Top three: how loud each frequency is "
        "over time in the original, in the protected song, and in the noise that was added (bright = loud).",
        "Bottom: the noise's level minus what the music masks at that moment and frequency. "
        "Blue: the music hides the noise. Red: the noise stands above the masking threshold and could be heard.",
    ]
    if verdict is not None:
        lines.append(f"Verdict on this excerpt: {verdict['text']}. `harmonycloak verify` measures the whole song, "
                     "with ViSQOL.")
    return "\n".join(lines)
