"""What one job of the app does: protect the uploaded file with the same function as
`harmonycloak protect`, then make the A/B excerpts and the verdict the page shows.

The A/B excerpts are the same stretch of the original and of the protected file, both decoded
as a listener hears them: the protected preview and the original's same seconds, or (a whole
song protected) the middle `AB_EXCERPT_S` seconds of each. The protected excerpt is scaled to
the original's integrated loudness, so that a louder copy cannot sound "better" or "different"
for its level alone; the gain is shown on the page.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from harmonycloak import protect
from harmonycloak.app.jobs import Job, JobCancelled
from harmonycloak.flows.audio.protect import preview_excerpt
from harmonycloak.flows.dispatch import file_kind
from harmonycloak.flows.results import ProgressCallback
from harmonycloak.flows.verdict import Verdict, audio_verdict, measured_protection
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.metrics.perceptual import loudness_change_lu
from harmonycloak.music import Audio, AudioFormat

AB_EXCERPT_S = 20.0  # the A/B players' excerpt when the whole song was protected
AB_FORMAT = AudioFormat("wav", "pcm", subtype="PCM_24")  # every browser plays it; 24 bits keep the noise


def protect_job(job: Job, progress: ProgressCallback) -> None:
    """Protect `job.input_path` into `job.output_folder`; for audio, then write the A/B excerpts.
    Fills `job.result` and `job.warnings`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = protect(job.input_path, job.output_folder, job.settings, progress=progress)
    # the record catches every thread's warnings: keep those about this file, named as the musician knows it
    job.warnings = [str(warning.message).replace(str(job.input_path), job.name) for warning in caught
                    if str(job.input_path) in str(warning.message)]
    job.result = {"output": result.output_path, "report": result.report_path, "picture": result.picture_path}
    if job.cancel_requested:
        raise JobCancelled()
    kind = file_kind(job.input_path)
    if kind == "midi" or result.report.get("silent"):
        reason = "a MIDI file: run harmonycloak verify to hear it rendered" if kind == "midi" else "the song is silent"
        verdict = Verdict(None, (reason,), measured_protection(kind, job.settings.resolved(kind).cloak))
    else:
        job.phase = "preparing the A/B preview"
        original, protected = ab_excerpts(read_audio(job.input_path), read_audio(result.output_path),
                                          job.settings.preview_s)
        change_lu = loudness_change_lu(original.samples, protected.samples, original.sample_rate_hz)
        gain_db = -change_lu if math.isfinite(change_lu) else 0.0
        original, protected = loudness_matched(original, protected, gain_db)
        ab_folder = job.folder / "ab"
        ab_folder.mkdir(exist_ok=True)
        job.result["ab_original"] = write_audio(original, ab_folder / "original.wav", format=AB_FORMAT)
        job.result["ab_protected"] = write_audio(protected, ab_folder / "protected.wav", format=AB_FORMAT)
        job.result["ab_seconds"] = original.duration_s
        job.result["ab_protected_gain_db"] = gain_db
        verdict = audio_verdict(result.report["noise_to_mask_ratio_db"], change_lu, job.settings.resolved(kind).cloak)
    job.result["verdict"] = verdict.text()
    job.result["inaudible"] = verdict.inaudible
    job.result["snr_db"] = result.report.get("snr_db")


def ab_excerpts(original: Audio, protected: Audio, preview_s: float | None) -> tuple[Audio, Audio]:
    """The same stretch of both: a protected preview and the original's same seconds, or the middle
    `AB_EXCERPT_S` seconds of a whole protected song and of its original (`preview_excerpt` picks
    the stretch the protect flow picks)."""
    original = preview_excerpt(original, preview_s if preview_s is not None else AB_EXCERPT_S)
    if preview_s is None:
        protected = preview_excerpt(protected, AB_EXCERPT_S)
    frames = min(original.num_frames, protected.num_frames)
    return (replace(original, samples=original.samples[:, :frames]),
            replace(protected, samples=protected.samples[:, :frames]))


def loudness_matched(original: Audio, protected: Audio, gain_db: float) -> tuple[Audio, Audio]:
    """Both excerpts for listening: the protected one scaled by `gain_db`, then both by one common
    factor if needed so that neither peaks above full scale (their loudness stays equal)."""
    scaled = protected.samples * np.float32(10 ** (gain_db / 20))
    peak = max(float(np.max(np.abs(original.samples), initial=0.0)), float(np.max(np.abs(scaled), initial=0.0)))
    common = np.float32(1.0 / peak) if peak > 1.0 else np.float32(1.0)
    return (Audio(original.samples * common, original.sample_rate_hz),
            Audio(scaled * common, protected.sample_rate_hz))
