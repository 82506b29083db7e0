"""Train a generative audio model on audio files: a white-box target for `protect --model`.

An attacker's model in miniature: the given family learns next-frame prediction on the
files' mono mix at the working rate, with Adam, and is saved as a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harmonycloak.cloak.problem import segment_starts
from harmonycloak.errors import MidiFileError, SettingsError
from harmonycloak.io.audio import read_audio
from harmonycloak.models.checkpoint import save_checkpoint
from harmonycloak.models.registry import build_model
from harmonycloak.optim.training import train_generative_model
from harmonycloak.pipeline import to_working_rate
from harmonycloak.safeguards import check_seed


def audio_segments(paths: list[Path], sample_rate_hz: int, segment_samples: int) -> torch.Tensor:
    """Mono segments (segments, segment_samples) at `sample_rate_hz` tiling every file."""
    pieces = []
    for path in paths:
        audio = read_audio(path)
        mono = torch.from_numpy(to_working_rate(audio.samples.mean(axis=0), audio.sample_rate_hz, sample_rate_hz))
        mono = torch.nn.functional.pad(mono, (0, max(segment_samples - mono.shape[-1], 0)))
        starts = segment_starts(mono.shape[-1], segment_samples)
        pieces.append(mono[starts[:, None] + torch.arange(segment_samples)])
    return torch.cat(pieces)


def train_audio_model(paths: list[Path], output: Path, family: str = "ar-transformer", preset: str = "default",
                      steps: int = 300, seed: int = 0, segment_s: float = 2.56) -> tuple[Path, list[float]]:
    """Train `family` on `paths` for `steps` steps; save to `output`; return (path, loss curve)."""
    if steps < 1:
        raise SettingsError("training needs at least one step")
    check_seed(seed)
    model = build_model(family, preset, seed=seed)
    if not hasattr(model.config, "frontend"):
        raise SettingsError(f"'{family}' is a model of MIDI music; train it on MIDI files")
    rate = model.config.frontend.sample_rate_hz
    data = audio_segments(paths, rate, round(segment_s * rate))
    curve = train_generative_model(model, lambda ids: data[ids], len(data), steps, torch.Generator().manual_seed(seed))
    return save_checkpoint(model, family, output), curve


def midi_phrase_format(family: str, preset: str, tracks: int) -> tuple[int, int]:
    """(steps per bar, bars per phrase) that a model of ``family`` and ``preset`` reads."""
    from harmonycloak.models.registry import family_spec
    from harmonycloak.midi_pipeline import MAX_SEGMENT_BARS

    config = family_spec(family).presets[preset]
    if family == "musegan":
        return config.phrase.steps_per_bar, config.phrase.bars
    return config.steps_per_bar, min(MAX_SEGMENT_BARS, config.max_bars)


def midi_phrases(paths: list[Path], steps_per_bar: int, bars: int) -> torch.Tensor:
    """Phrases (phrases, tracks, bars × steps_per_bar, 128) of velocity / 127 tiling every MIDI file.

    Raises:
        MidiFileError: a file cannot be read; SettingsError: the files have different numbers of tracks.
    """
    from harmonycloak.cloak.midi_problem import phrase_steps, phrases_of
    from harmonycloak.io.midi import read_midi

    pieces = []
    for path in paths:
        roll = read_midi(path).piano_roll(steps_per_bar // 4)
        if pieces and roll.num_tracks != pieces[0].shape[1]:
            raise SettingsError(f"{path}: has {roll.num_tracks} tracks but {paths[0]} has {pieces[0].shape[1]}; "
                                "a model is trained on files with the same tracks")
        longest = int(np.diff(roll.bar_lines_step).max(initial=0))
        if longest > steps_per_bar:
            raise MidiFileError(f"has a bar of {longest} steps, longer than the {steps_per_bar} of the model's bars "
                                "(leave it out of the training files)", path)
        pieces.append(phrases_of(torch.from_numpy(roll.velocities), phrase_steps(roll, steps_per_bar, bars)))
    return torch.cat(pieces)


def train_midi_model(paths: list[Path], output: Path, family: str = "musegan", preset: str = "default",
                     steps: int = 300, seed: int = 0, learning_rate: float | None = None) -> tuple[Path, list[float]]:
    """Train a MIDI model (musegan, symphonynet) on MIDI files as an attacker would (paper §5.1:
    Adam 1e-4 for MuseGAN, 3e-4 for SymphonyNet, unless ``learning_rate`` says otherwise); save
    it; return (path, loss curve).

    The curve of a MuseGAN is its discriminator's loss (its generator's loss does not fall as it learns).
    """
    from dataclasses import replace

    from harmonycloak.models.musegan import MUSEGAN_LEARNING_RATE, train_musegan
    from harmonycloak.models.symphonynet import SYMPHONYNET_LEARNING_RATE

    if steps < 1:
        raise SettingsError("training needs at least one step")
    if family not in ("musegan", "symphonynet"):
        raise SettingsError(f"MIDI files train a musegan or symphonynet model, not '{family}'")
    check_seed(seed)
    steps_per_bar, bars = midi_phrase_format(family, preset, 0)
    data = midi_phrases(paths, steps_per_bar, bars)
    tracks = data.shape[1]
    generator = torch.Generator().manual_seed(seed)
    if family == "musegan":
        from harmonycloak.models.registry import family_spec

        phrase = replace(family_spec(family).presets[preset].phrase, tracks=tracks)
        model = build_model(family, preset, seed=seed, phrase=phrase)
        rate = MUSEGAN_LEARNING_RATE if learning_rate is None else learning_rate
        curve = [step.discriminator
                 for step in train_musegan(model, lambda ids: data[ids], len(data), steps, generator, learning_rate=rate)]
    else:
        model = build_model(family, preset, seed=seed, tracks=tracks)
        curve = train_generative_model(model, lambda ids: data[ids], len(data), steps, generator,
                                       learning_rate=SYMPHONYNET_LEARNING_RATE if learning_rate is None else learning_rate)
    return save_checkpoint(model, family, output), curve
