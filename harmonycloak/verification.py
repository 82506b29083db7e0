"""How audible and how protected is a protected file? (`harmonycloak verify`)

Audibility: noise-to-mask ratio over time–frequency bins, SNR, ViSQOL MOS, loudness change
and clipped samples, with the noise taken as protected − original.

Protection: two fresh surrogates with the same initial weights are trained the same way, one
on the protected audio and one on the original. If the cloak works, the first one's loss
falls faster (the protected song looks already learned) and it ends up knowing the original
song less well: its loss on the clean original stays above the second one's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from harmonycloak.cloak.problem import segment_starts
from harmonycloak.errors import AudioFileError
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.io.midi import MIDI_SUFFIXES
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
from harmonycloak.optim.minmin import mean_generative_loss
from harmonycloak.optim.training import train_generative_model
from harmonycloak.pipeline import to_working_rate
from harmonycloak.safeguards import check_count, check_seed

WORKING_RATE_HZ = 16_000
SEGMENT_SAMPLES = 40_960  # 2.56 s at 16 kHz, as the protection's optimiser uses
VISQOL_SECONDS = 30.0  # ViSQOL takes about a second per second of audio: score the middle 30 s


def verify_files(original_path: str | Path, protected_path: str | Path, *, protection_check: bool = True,
                 visqol: bool = True, seed: int = 0, training_steps: int = 60, model_preset: str = "default") -> dict:
    """Measure audibility and protection of `protected_path` against `original_path`.

    MIDI files (.mid, .midi) are measured by `midi_verification.verify_midi_files`."""
    if protection_check:
        check_seed(seed)
        check_count("the number of training steps (--steps)", training_steps)
    if Path(original_path).suffix.lower() in MIDI_SUFFIXES:
        from harmonycloak.midi_verification import verify_midi_files

        return verify_midi_files(original_path, protected_path, protection_check=protection_check, seed=seed,
                                 training_steps=training_steps, model_preset=model_preset)
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
    return result


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
    """Train twin fresh surrogates on protected and on original audio; compare their losses."""
    def segments(samples: np.ndarray) -> torch.Tensor:
        mono = torch.from_numpy(to_working_rate(samples.mean(axis=0), sample_rate_hz, WORKING_RATE_HZ))
        mono = torch.nn.functional.pad(mono, (0, max(SEGMENT_SAMPLES - mono.shape[-1], 0)))
        starts = segment_starts(mono.shape[-1], SEGMENT_SAMPLES)
        return mono[starts[:, None] + torch.arange(SEGMENT_SAMPLES)]  # (segments, S)

    clean, cloaked = segments(original), segments(protected)
    curves, final_on_original = {}, {}
    for name, data in (("protected", cloaked), ("original", clean)):
        model = build_model("ar-transformer", model_preset, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        curves[name] = train_generative_model(model, lambda ids, d=data: d[ids], len(data), steps, generator)
        final_on_original[name] = mean_generative_loss([model], lambda ids: clean[ids], len(clean))
    return {
        "training_steps": steps,
        "loss_curve": curves,
        "loss_on_original_after_training": final_on_original,
        # > 0: the model trained on the protected song knows the original less well than its twin.
        "learning_gap": final_on_original["protected"] - final_on_original["original"],
    }


def format_verification(result: dict) -> str:
    """The measurements as a short text a musician can read."""
    if result.get("kind") == "midi":
        from harmonycloak.midi_verification import format_midi_verification

        return format_midi_verification(result)
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
        lines += format_learning_speed(result["protection"], "surrogates", "audio")
    return "\n".join(lines)


def format_learning_speed(protection: dict, models: str, medium: str) -> list[str]:
    """The twin-surrogate comparison (`learning_speed` and its MIDI counterpart) as text lines."""
    curves = protection["loss_curve"]
    on_original = protection["loss_on_original_after_training"]
    return [
        f"How protected is it? (twin {models}, {protection['training_steps']} training steps each)",
        f"  training loss on protected {medium:<6} {curves['protected'][0]:.4f} → {curves['protected'][-1]:.4f}",
        f"  training loss on original {medium:<6}  {curves['original'][0]:.4f} → {curves['original'][-1]:.4f}",
        f"  loss on the original after training: trained on protected {on_original['protected']:.4f}, "
        f"on original {on_original['original']:.4f} (gap {protection['learning_gap']:+.4f}; above 0 = learned less)",
    ]


def _number(value, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)
