"""The A/B excerpts on their own: the same seconds of both files, and loudness matched by a gain
that pyloudnorm confirms."""

import numpy as np
import pyloudnorm
import pytest

from harmonycloak.app.protection import AB_EXCERPT_S, ab_excerpts, loudness_matched
from harmonycloak.music import Audio

RATE_HZ = 8_000


def numbered(seconds: float) -> Audio:
    """Stereo audio whose every sample says its own frame number (so an excerpt shows where it came from)."""
    frames = np.arange(round(seconds * RATE_HZ), dtype=np.float32)
    return Audio(np.stack([frames, -frames]), RATE_HZ)


def test_a_whole_song_is_compared_on_the_same_middle_seconds_of_both():
    original, protected = ab_excerpts(numbered(30.0), numbered(30.0), preview_s=None)
    length = round(AB_EXCERPT_S * RATE_HZ)
    first = (30 * RATE_HZ - length) // 2
    assert np.array_equal(original.samples[0], np.arange(first, first + length))
    assert np.array_equal(protected.samples, original.samples)


def test_a_preview_is_compared_with_the_originals_same_seconds():
    middle = slice(round(13.5 * RATE_HZ), round(16.5 * RATE_HZ))  # the middle 3 s of 30 s
    preview = Audio(-numbered(30.0).samples[:, middle], RATE_HZ)
    original, protected = ab_excerpts(numbered(30.0), preview, preview_s=3.0)
    assert np.array_equal(original.samples, numbered(30.0).samples[:, middle])
    assert np.array_equal(protected.samples, preview.samples)


@pytest.mark.parametrize("level, gain_db", [(0.1, 1.5), (0.9, 3.0)])  # 0.9 · 10^(3/20) peaks above full scale
def test_loudness_matching_gives_equal_loudness_and_no_sample_above_full_scale(level, gain_db):
    generator = np.random.default_rng(0)
    music = (level * np.sin(2 * np.pi * 440 * np.arange(4 * RATE_HZ) / RATE_HZ)).astype(np.float32)
    original = Audio(np.stack([music, music]), RATE_HZ)
    quieter = Audio(original.samples * np.float32(10 ** (-gain_db / 20))
                    + generator.normal(0, 1e-4, original.samples.shape).astype(np.float32), RATE_HZ)
    meter = pyloudnorm.Meter(RATE_HZ)
    change_lu = meter.integrated_loudness(quieter.samples.T) - meter.integrated_loudness(original.samples.T)
    matched_original, matched = loudness_matched(original, quieter, -change_lu)
    assert meter.integrated_loudness(matched.samples.T) == pytest.approx(
        meter.integrated_loudness(matched_original.samples.T), abs=0.01)
    assert max(np.max(np.abs(matched.samples)), np.max(np.abs(matched_original.samples))) <= 1.0 + 1e-6
