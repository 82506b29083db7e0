"""How audible and how protected is a protected audio file? (`harmonycloak verify`)

Audibility: noise-to-mask ratio over time–frequency bins, SNR, ViSQOL MOS, loudness change
and clipped samples, with the noise taken as protected − original; for a lossy file, the
same measures of the original re-encoded the same way (the codec's own share).

Protection: twin fresh surrogates (`flows.twins`), next-frame transformers on the mono mix at
the working rate.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from harmonycloak.cloak.model_input import audio_segments, working_rate_mono
from harmonycloak.errors import AudioFileError
from harmonycloak.flows.twins import format_twin_training, twin_training
from harmonycloak.flows.results import report_paths
from harmonycloak.flows.verdict import audio_verdict, verdict_json, verdict_line
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.metrics.perceptual import (
    clipped_sample_count,
    loudness_change_lu,
    noise_energy_share_by_region,
    noise_to_mask_ratio_stats_db,
    snr_db,
    visqol_mos,
)
from harmonycloak.models.registry import build_model
from harmonycloak.music import Audio
from harmonycloak.resampling import to_working_rate
from harmonycloak.settings import SEGMENT_S, WORKING_RATE_HZ, ProtectionSettings

VISQOL_SECONDS = 30.0  # ViSQOL takes about a second per second of audio: score the middle 30 s


def verify_audio_files(original_path: str | Path, protected_path: str | Path, *, protection_check: bool = True,
                       visqol: bool = True, seed: int = 0, training_steps: int = 60,
                       model_preset: str = "default") -> dict:
    """Measure audibility and protection of `protected_path` against `original_path`."""
    original, protected = read_audio(original_path), read_audio(protected_path)
    if original.num_channels != protected.num_channels:
        raise AudioFileError(f"has {protected.num_channels} channels but the original has {original.num_channels}",
                             protected_path)
    protected_samples = protected.samples
    if protected.sample_rate_hz != original.sample_rate_hz:
        protected_samples = to_working_rate(protected_samples, protected.sample_rate_hz, original.sample_rate_hz)
    length = min(original.num_frames, protected_samples.shape[-1])
    clean, cloaked, rate = original.samples[:, :length], protected_samples[:, :length], original.sample_rate_hz
    result = {
        "kind": "audio",
        "original": str(original_path),
        "protected": str(protected_path),
        "duration_s": length / rate,
        "audibility": {
            "snr_db": snr_db(clean, cloaked),
            "noise_to_mask_ratio_db": noise_to_mask_ratio_stats_db(clean, cloaked, rate),
            "loudness_change_lu": loudness_change_lu(clean, cloaked, rate),
            "clipped_samples": {"original": clipped_sample_count(clean), "protected": clipped_sample_count(cloaked)},
            "noise_energy_share": noise_energy_share_by_region(clean, cloaked, rate),
            "visqol_mos": visqol_mos(clean, cloaked, rate, max_seconds=VISQOL_SECONDS) if visqol else None,
        },
    }
    if protected.format is not None and protected.format.is_lossy:
        result["audibility"]["codec_alone"] = codec_alone(original, protected, protected_path)
    if protection_check:
        result["protection"] = learning_speed(clean, cloaked, rate, seed, training_steps, model_preset)
    audibility, lossy = result["audibility"], protected.format is not None and protected.format.is_lossy
    result["verdict"] = verdict_json(audio_verdict(
        audibility["noise_to_mask_ratio_db"], audibility["loudness_change_lu"], cloak_of(protected_path),
        visqol_mos=None if lossy else audibility["visqol_mos"], clipped_samples=audibility["clipped_samples"],
        codec_band_p95_db=audibility["codec_alone"]["noise_to_mask_ratio_db"]["band_p95_db"] if lossy else None))
    return result


def cloak_of(protected_path: str | Path) -> str:
    """The cloak that made a protected file, from the report beside it (the default cloak when
    there is none): the measured-protection sentence depends on it."""
    report_path = report_paths(Path(protected_path))[0]
    try:
        return json.loads(report_path.read_text())["settings"]["cloak"]
    except (OSError, ValueError, KeyError, TypeError):
        return ProtectionSettings().resolved("audio").cloak


def codec_alone(original: Audio, protected: Audio, protected_path: str | Path) -> dict:
    """SNR and noise-to-mask ratio of the original re-encoded as the protected file is stored.

    A lossy protected file differs from the original by the cloak *and* by the codec; this is
    the codec's share alone, the floor any lossy copy of the song has (a musician compares the
    two: what is above this floor is the cloak).
    """
    suffix = Path(protected_path).suffix
    with tempfile.TemporaryDirectory() as folder:
        reencoded = read_audio(write_audio(original, Path(folder) / f"codec-alone{suffix}", format=protected.format))
    samples = reencoded.samples
    if reencoded.sample_rate_hz != original.sample_rate_hz:
        samples = to_working_rate(samples, reencoded.sample_rate_hz, original.sample_rate_hz)
    length = min(original.num_frames, samples.shape[-1])
    clean, coded = original.samples[:, :length], samples[:, :length]
    return {
        "format": f"{protected.format.codec} {round((protected.format.bitrate_bps or 0) / 1000)} kbps",
        "snr_db": snr_db(clean, coded),
        "noise_to_mask_ratio_db": noise_to_mask_ratio_stats_db(clean, coded, original.sample_rate_hz),
    }


def learning_speed(original: np.ndarray, protected: np.ndarray, sample_rate_hz: int, seed: int, steps: int,
                   model_preset: str = "default") -> dict:
    """Twin next-frame transformers on the protected and the original audio (`flows.twins`)."""
    segment_samples = round(SEGMENT_S * WORKING_RATE_HZ)
    clean = audio_segments(working_rate_mono(original, sample_rate_hz), segment_samples)
    cloaked = audio_segments(working_rate_mono(protected, sample_rate_hz), segment_samples)
    return twin_training(lambda: build_model("ar-transformer", model_preset, seed=seed), clean, cloaked, steps, seed)


def format_audio_verification(result: dict) -> str:
    """The measurements as a short text a musician can read."""
    audible = result["audibility"]
    nmr = audible["noise_to_mask_ratio_db"]
    lines = [
        f"{result['protected']}  vs  {result['original']}  ({result['duration_s']:.1f} s)",
        "How audible is the change?",
        f"  ViSQOL MOS            {_number(audible['visqol_mos'], '.2f')}  (4.73 = identical, 4.44 ≈ MP3 128 kbps"
        f"{'' if result['duration_s'] <= VISQOL_SECONDS else f'; middle {VISQOL_SECONDS:.0f} s'})",
        f"  SNR                   {_number(audible['snr_db'], '.1f')} dB",
        f"  noise-to-mask ratio   per bin: median {_number(nmr['median_db'], '.1f')} dB, p95 {_number(nmr['p95_db'], '.1f')} dB, "
        f"{100 * nmr['fraction_above_0db']:.1f} % above the masking threshold",
        f"                        per Bark band: median {_number(nmr['band_median_db'], '.1f')} dB, "
        f"p95 {_number(nmr['band_p95_db'], '.1f')} dB, {100 * nmr['band_fraction_above_0db']:.1f} % above",
    ]
    if "codec_alone" in audible:
        codec = audible["codec_alone"]
        lines.append(f"  the codec alone       ({codec['format']}: the original re-encoded the same way) SNR "
                     f"{_number(codec['snr_db'], '.1f')} dB, per Bark band p95 "
                     f"{_number(codec['noise_to_mask_ratio_db']['band_p95_db'], '.1f')} dB, "
                     f"{100 * codec['noise_to_mask_ratio_db']['band_fraction_above_0db']:.1f} % above")
    lines += [
        f"  loudness change       {_number(audible['loudness_change_lu'], '+.2f')} LU",
        f"  clipped samples       {audible['clipped_samples']['protected']} (original: {audible['clipped_samples']['original']})",
    ]
    if "protection" in result:
        lines += format_twin_training(result["protection"], "surrogates", "audio")
    lines.append(verdict_line(result["verdict"], result.get("protection")))
    return "\n".join(lines)


def _number(value, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)
