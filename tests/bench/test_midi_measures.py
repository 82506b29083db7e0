"""The MIDI attackers' generated music, measured: layouts, hand-computed metrics, the threshold."""

import math

import numpy as np
import pytest
import torch

from harmonycloak.bench.unlearnability.midi_measures import (
    bar_segments,
    generated_rolls,
    reference_measures,
    rolls_to_bars,
    symbolic_measures,
)
from harmonycloak.errors import SettingsError
from harmonycloak.metrics.symbolic import qualified_note_min_steps
from harmonycloak.models.registry import build_model


@pytest.mark.parametrize("steps_per_bar, expected", [(96, 3), (48, 2), (32, 1), (16, 1), (8, 1), (97, 4)])
def test_qualified_note_is_a_32nd_note_rounded_up(steps_per_bar, expected):
    assert qualified_note_min_steps(steps_per_bar) == expected


def test_rolls_to_bars_keeps_tracks_apart_and_bars_in_order():
    rolls = torch.zeros(2, 3, 8, 128)  # 2 phrases × 3 tracks × 2 bars of 4 steps
    for phrase in range(2):
        for track in range(3):
            rolls[phrase, track, :, 10 * track + 5 * phrase] = 1  # pitch tells track and phrase
    bars = rolls_to_bars(rolls, 4)
    assert bars.shape == (3, 4, 4, 128)
    for track in range(3):
        assert [int(np.flatnonzero(bar[0])[0]) for bar in bars[track]] == [10 * track] * 2 + [10 * track + 5] * 2


def test_bar_segments_cut_phrases_into_bars_at_the_coarser_resolution():
    rolls = torch.zeros(2, 2, 24, 128)  # 2 phrases × 2 tracks × 2 bars of 12 steps (3 per beat)
    rolls[1, 0, 12 + 4, 60] = 0.5  # phrase 1, bar 1, fine step 4: beat 1's second step
    rolls[0, 1, 11, 40] = 0.9  # phrase 0, bar 0, its last fine step
    segments = bar_segments(rolls, steps_per_bar=12, steps_per_beat=1)
    assert segments.shape == (4, 2, 4, 128)  # phrase 0 bar 0, phrase 0 bar 1, phrase 1 bar 0, phrase 1 bar 1
    assert np.argwhere(segments > 0).tolist() == [[0, 1, 3, 40], [3, 0, 1, 60]]
    assert segments[3, 0, 1, 60] == pytest.approx(0.5)
    with pytest.raises(SettingsError, match="steps per bar"):
        bar_segments(rolls, steps_per_bar=12, steps_per_beat=2)  # 12 fine steps are not a whole number of 8


def test_symbolic_measures_by_hand():
    # Track 1: C4 held all of bar 0, bar 1 empty. Track 2: C4 E4 G4 in bar 0, G4 in bar 1.
    bars = np.zeros((2, 2, 16, 128), np.float32)
    bars[0, 0, :, 60] = 1
    bars[1, 0, :, [60, 64, 67]] = 1
    bars[1, 1, :8, 67] = 1
    measured = symbolic_measures(bars)
    assert measured["bars"] == 2
    assert measured["symbolic"]["EB (%)"] == pytest.approx((50 + 0) / 2)
    assert measured["symbolic"]["UPC"] == pytest.approx((1 + (3 + 1) / 2) / 2)
    assert measured["symbolic"]["QN (%)"] == 100.0  # 16 steps per bar: every note is a 32nd or longer
    # TD: only bar 0 sounds in both tracks: C against a C major triad (Harte's 6-D tonal centroid).
    def centroid(pitch_classes):
        angles = [(7 * math.pi / 6, 1.0), (3 * math.pi / 2, 1.0), (2 * math.pi / 3, 0.5)]
        return np.mean([[r * f(l * a) for a, r in angles for f in (math.sin, math.cos)] for l in pitch_classes], axis=0)

    expected_td = float(np.linalg.norm(centroid([0]) - centroid([0, 4, 7])))
    assert measured["symbolic"]["TD"] == pytest.approx(expected_td)
    assert set(measured["per_track"]) >= {"EB (%) track 1", "EB (%) track 2", "TD track 1-track 2"}


def test_symbolic_measures_of_nothing_are_nan():
    measured = symbolic_measures(np.zeros((4, 0, 16, 128)))
    assert measured["bars"] == 0 and all(math.isnan(v) for v in measured["symbolic"].values())


def test_musegan_output_is_hard_thresholded_and_reads_only_its_pitch_range():
    model = build_model("musegan", "tiny", seed=3)
    phrase = model.config.phrase
    rolls = generated_rolls(model, "musegan", torch.zeros(1, phrase.tracks, phrase.steps, 128), 5,
                            phrase.steps_per_bar, seed=0)
    assert rolls.shape == (5, phrase.tracks, phrase.steps, 128)
    sounding = rolls[rolls > 0]
    assert sounding.numel() == 0 or float(sounding.min()) >= 0.5
    again = generated_rolls(model, "musegan", torch.zeros(1, phrase.tracks, phrase.steps, 128), 5,
                            phrase.steps_per_bar, seed=0)
    assert torch.equal(rolls, again)  # the seed decides the latents
    assert model.training  # the caller's mode is restored

    clean = torch.zeros(1, phrase.tracks, phrase.steps, 128)
    clean[0, :, :, phrase.lowest_pitch] = 1.0  # inside the model's range
    clean[0, :, :, phrase.lowest_pitch - 1] = 1.0  # below it: the model never sees it
    reference = reference_measures(model, clean, phrase.steps_per_bar)
    assert reference["symbolic"]["UPC"] == 1.0 and reference["symbolic"]["EB (%)"] == 0.0


def test_symphonynet_continues_the_first_bar_and_only_the_continuation_is_returned():
    model = build_model("symphonynet", "tiny", seed=1)
    config = model.config
    prompts = torch.zeros(2, config.tracks, 2 * config.steps_per_bar, 128)
    rolls = generated_rolls(model, "symphonynet", prompts, 3, config.steps_per_bar, seed=0)
    assert rolls.shape == (3, config.tracks, config.steps_per_bar, 128)
