"""Data recipes of the zoo: what an entry trains on and what it is evaluated on.

A recipe gives a training sampler (batch size, torch.Generator → a batch) and a fixed
held-out evaluation batch, so that every entry is trained and scored the same way:

* ``"audio"``: crops of `segment_s` from the zoo's audio clips (`audio_corpus`), the
  training split sampled at random clips and offsets; evaluation: the first crop of every
  held-out clip (fixed, no randomness).
* ``"midi"``: 4-track piano-roll phrases of the zoo's symbolic corpus (`symbolic_corpus`).
* ``"synthetic-audio"``: a few seconds of sums of sine tones, made from a seed, for tests and
  for trying the machinery without the Debian music installed.

Shapes: B batch, L crop samples; phrases (B, M, T, 128).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from harmonycloak.errors import SettingsError
from harmonycloak.settings import WORKING_RATE_HZ
from harmonycloak.zoo.entry_data import EntryData

RECIPES = ("audio", "midi", "synthetic-audio")


def load_entry_data(recipe: str, segment_s: float, sample_rate_hz: int = WORKING_RATE_HZ,
                    phrase: tuple[int, int] | None = None, max_heldout: int | None = None) -> EntryData:
    """The data of a recipe (module docstring).

    Args:
        segment_s: crop length of the audio recipes, in seconds.
        phrase: (steps per bar, bars per phrase) of the MIDI recipe.
        max_heldout: keep at most this many held-out examples (evenly spaced over all of them).
    """
    if recipe == "audio":
        data = _audio(segment_s, sample_rate_hz)
    elif recipe == "synthetic-audio":
        data = _synthetic_audio(segment_s, sample_rate_hz)
    elif recipe == "midi":
        if phrase is None:
            raise SettingsError("the midi recipe needs the phrase format")
        from harmonycloak.zoo.symbolic_corpus import load_phrase_data

        data = load_phrase_data(*phrase)
    else:
        raise SettingsError(f"unknown zoo data recipe {recipe!r} (known: {', '.join(RECIPES)})")
    if max_heldout is not None and data.heldout.shape[0] > max_heldout:
        keep = torch.linspace(0, data.heldout.shape[0] - 1, max_heldout).round().long()
        data.heldout = data.heldout[keep]
    return data


def _audio(segment_s: float, sample_rate_hz: int) -> EntryData:
    from harmonycloak.zoo.audio_corpus import SAMPLE_RATE_HZ, load_clip_set

    if sample_rate_hz != SAMPLE_RATE_HZ:
        raise SettingsError(f"the zoo's audio is at {SAMPLE_RATE_HZ} Hz; this model reads {sample_rate_hz} Hz")
    length = round(segment_s * sample_rate_hz)
    train, heldout = load_clip_set("train"), load_clip_set("heldout")
    describe = {
        "recipe": "audio", "segment_s": segment_s, "sample_rate_hz": sample_rate_hz,
        "train_hours": round(train.hours, 3), "heldout_hours": round(heldout.hours, 3),
        "train_clips": len(train), "heldout_clips": len(heldout),
        "files": [vars(record) for record in train.records + heldout.records],
    }
    return EntryData(lambda batch, generator: train.random_crops(batch, length, generator)[0],
                     heldout.waveforms(range(len(heldout)), 0, length), describe)


def synthetic_tones(count: int, length: int, sample_rate_hz: int, seed: int) -> Tensor:
    """(count, length) sums of three sine tones at 110–1760 Hz, amplitude 0.15 each, from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    frequency_hz = 110.0 * 2.0 ** (4.0 * torch.rand(count, 3, 1, generator=generator))
    phase = 2 * math.pi * torch.rand(count, 3, 1, generator=generator)
    time_s = torch.arange(length) / sample_rate_hz
    return (0.15 * torch.sin(2 * math.pi * frequency_hz * time_s + phase)).sum(dim=1)


def _synthetic_audio(segment_s: float, sample_rate_hz: int) -> EntryData:
    length = round(segment_s * sample_rate_hz)
    train = synthetic_tones(32, length, sample_rate_hz, seed=1)

    def sample(batch: int, generator: torch.Generator) -> Tensor:
        return train[torch.randint(train.shape[0], (batch,), generator=generator)]

    return EntryData(sample, synthetic_tones(4, length, sample_rate_hz, seed=2),
                     {"recipe": "synthetic-audio", "segment_s": segment_s, "train_examples": 32, "heldout_examples": 4,
                      "files": []})
