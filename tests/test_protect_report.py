"""The report of a protected audio file: one masking computation for the JSON and the picture,
a verdict in both, and the picture's caption in words."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harmonycloak.flows.audio import report as report_module
from harmonycloak.flows.audio.report import PICTURE_EXCERPT_S, MaskingExcerpt, audio_report, picture_caption
from harmonycloak.metrics.perceptual import noise_to_mask_ratio_stats_db
from harmonycloak.settings import ProtectionSettings

RATE_HZ = 16_000


def tone_and_noise(seconds: float, noise_rms: float) -> tuple[np.ndarray, np.ndarray]:
    time_s = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    original = (0.3 * np.sin(2 * math.pi * 440 * time_s))[None, :].repeat(2, axis=0).astype(np.float32)
    noise = noise_rms * np.random.default_rng(1).standard_normal(original.shape).astype(np.float32)
    return original, original + noise


def make_report(original, protected, masking=None) -> dict:
    return audio_report("in.wav", "out.wav", ProtectionSettings(), original, protected, RATE_HZ, {}, 1.0, masking)


def test_the_json_reads_the_masking_of_the_middle_excerpt_as_the_public_measure_does():
    original, protected = tone_and_noise(PICTURE_EXCERPT_S + 4.0, 1e-3)
    report = make_report(original, protected)
    middle = slice(2 * RATE_HZ, (2 + round(PICTURE_EXCERPT_S)) * RATE_HZ)  # 34 s: the middle 30 start at 2 s
    expected = noise_to_mask_ratio_stats_db(original[:, middle], protected[:, middle], RATE_HZ)
    assert report["noise_to_mask_ratio_db"] == pytest.approx(expected)
    assert report["excerpt_s"] == pytest.approx([2.0, 2.0 + PICTURE_EXCERPT_S])


@pytest.mark.parametrize(("noise_rms", "audible"), [(0.1, True), (1e-5, False)])
def test_the_verdict_says_audible_for_loud_noise_and_inaudible_for_faint_noise(noise_rms, audible):
    original, protected = tone_and_noise(3.0, noise_rms)  # SNR ≈ 6.5 dB and ≈ 86 dB against the 0.3 sine
    report = make_report(original, protected)
    assert report["verdict"]["inaudible"] is not audible
    caption = picture_caption(MaskingExcerpt.of(original, protected, RATE_HZ), report["verdict"])
    assert "What this shows" in caption and "Blue" in caption
    assert f"inaudible by our checks: {'no' if audible else 'yes'}" in caption
    assert "protection measured on the benchmark" in caption


def test_the_json_and_the_picture_share_one_masking_computation(tmp_path, monkeypatch):
    calls = []
    real = report_module.masking_spectra_db
    monkeypatch.setattr(report_module, "masking_spectra_db", lambda *a, **k: calls.append(1) or real(*a, **k))
    original, protected = tone_and_noise(2.0, 1e-3)
    masking = MaskingExcerpt.of(original, protected, RATE_HZ)
    report = make_report(original, protected, masking)
    json_path, picture_path = report_module.write_report_files(report, masking, tmp_path / "out.wav")
    assert calls == [1]
    assert json_path.stat().st_size > 0 and picture_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
