"""Baselines: Gaussian budgets, the MP3 trip, the random-masked control, method names, protected-set choice."""


import numpy as np
import pytest

from harmonycloak.bench.unlearnability.baselines import (
    CloakSpec,
    base_method,
    check_method,
    depends_on_target,
    gaussian_noise,
    mp3_round_trip,
    protect,
)
from harmonycloak.bench.unlearnability.experiment import protected_indices
from harmonycloak.errors import SettingsError

RATE = 16_000


def _tone(seconds=2.0, frequency_hz=440.0, amplitude=0.4):
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.3])
def test_gaussian_budget_is_noise_power_over_music_power(ratio):
    song = _tone(4.0)
    noisy = gaussian_noise([song], ratio, seed=0)[0]
    measured = np.mean((noisy - song).astype(np.float64) ** 2) / np.mean(song.astype(np.float64) ** 2)
    assert measured == pytest.approx(ratio, rel=0.03)  # 64,000 samples: sampling error ≈ 0.6 %
    assert np.array_equal(noisy, gaussian_noise([song], ratio, seed=0)[0])  # deterministic for a seed


def test_mp3_round_trip_keeps_a_tone_and_length_and_alignment():
    song = _tone()
    back = mp3_round_trip(song, RATE)
    assert back.shape == song.shape and back.dtype == np.float32
    correlation = np.corrcoef(song[2000:-2000], back[2000:-2000])[0, 1]
    assert correlation > 0.99  # no delay: a shifted 440 Hz tone would decorrelate
    assert not np.array_equal(song, back)  # it is lossy


def test_method_names():
    assert base_method("cloak-blackbox+mp3") == ("cloak-blackbox", True)
    assert base_method("gaussian-0.2") == ("gaussian-0.2", False)
    assert depends_on_target("em-linf+mp3") and not depends_on_target("gaussian-0.1")
    for bad in ("gaussian-x", "gaussian--1", "cloak", "none+mp4"):
        with pytest.raises(SettingsError):
            check_method(bad)


def test_protected_sets_are_nested_and_sized():
    small, large = protected_indices(40, 0.05, seed=3), protected_indices(40, 0.5, seed=3)
    assert len(small) == 2 and len(large) == 20 and set(small) <= set(large)
    assert protected_indices(40, 1.0, seed=3) == list(range(40))
    assert len(protected_indices(5, 0.01, seed=0)) == 1  # at least one song
    assert protected_indices(40, 0.15, seed=0) != protected_indices(40, 0.15, seed=1)


def test_midi_bag_leaves_out_a_default_musegan_target_only():
    from dataclasses import replace as _replace

    from harmonycloak.bench.unlearnability.midi import MidiSpec, bag_variants_without_target
    from harmonycloak.models.musegan import PhraseFormat

    phrase = PhraseFormat(tracks=4, bars=4, steps_per_bar=48, lowest_pitch=24, octaves=7)
    spec = MidiSpec(preset="default", bag_size=9)
    # the default MuseGAN preset is the bag's first variant (musegan.MUSEGAN_BAG_VARIANTS[0])
    assert bag_variants_without_target("musegan", spec, phrase) == list(range(1, 10))
    assert bag_variants_without_target("symphonynet", spec, phrase) == list(range(9))
    tiny = _replace(spec, preset="tiny", bag_size=4)
    assert bag_variants_without_target("musegan", tiny, PhraseFormat(tracks=4, bars=2, steps_per_bar=16,
                                                                     lowest_pitch=24, octaves=7)) == [0, 1, 2, 3]


def test_random_masked_control_is_real_noise_under_the_masking_threshold():
    from harmonycloak.metrics.perceptual import noise_to_mask_ratio_stats_db

    rng = np.random.default_rng(0)
    songs = [(_tone(2.0) + 0.02 * rng.standard_normal(2 * RATE)).astype(np.float32) for _ in range(2)]
    spec = CloakSpec()
    released = protect("random-masked", songs, RATE, "ar-tcn", seed=0, spec=spec).songs
    again = protect("random-masked", songs, RATE, "ar-tcn", seed=0, spec=spec).songs
    assert all(np.array_equal(a, b) for a, b in zip(released, again))  # the seed decides it
    noise = np.concatenate(released) - np.concatenate(songs)
    assert np.mean(noise.astype(np.float64) ** 2) > 1e-8  # not silence
    nmr = noise_to_mask_ratio_stats_db(np.concatenate(songs)[None], np.concatenate(released)[None], RATE)
    assert nmr["p95_db"] < 0.0  # masked: under the music's threshold in almost every bin
