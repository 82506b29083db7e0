"""Train a MIDI model (MuseGAN or SymphonyNet) on MIDI files as an attacker would: a white-box
target for `protect --model` on MIDI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harmonycloak.cloak.model_input import score_phrases
from harmonycloak.errors import MidiFileError, SettingsError
from harmonycloak.io.midi import read_midi
from harmonycloak.models.checkpoint import save_checkpoint
from harmonycloak.models.interface import PhraseLayout
from harmonycloak.models.musegan import MUSEGAN_LEARNING_RATE, train_musegan
from harmonycloak.models.registry import build_model, symbolic_model
from harmonycloak.models.symphonynet import SYMPHONYNET_LEARNING_RATE
from harmonycloak.optim.training import train_generative_model
from harmonycloak.safeguards import check_seed

MIDI_FAMILIES = ("musegan", "symphonynet")


def midi_files_phrases(paths: list[Path], layout: PhraseLayout) -> torch.Tensor:
    """Phrases (phrases, tracks, bars × steps_per_bar, 128) of velocity / 127 tiling every MIDI file.

    Raises:
        MidiFileError: a file cannot be read, or has a bar longer than the layout's;
        SettingsError: the files have different numbers of tracks.
    """
    pieces = []
    for path in paths:
        score = read_midi(path)
        roll = score.piano_roll(layout.steps_per_beat)
        longest = int(np.diff(roll.bar_lines_step).max(initial=0))
        if longest > layout.steps_per_bar:
            raise MidiFileError(f"has a bar of {longest} steps, longer than the {layout.steps_per_bar} of the model's "
                                "bars (leave it out of the training files)", path)
        phrases = score_phrases(score, layout)
        if pieces and phrases.shape[1] != pieces[0].shape[1]:
            raise SettingsError(f"{path}: has {phrases.shape[1]} tracks but {paths[0]} has {pieces[0].shape[1]}; "
                                "a model is trained on files with the same tracks")
        pieces.append(phrases)
    return torch.cat(pieces)


def train_midi_model(paths: list[Path], output: Path, family: str = "musegan", preset: str = "default",
                     steps: int = 300, seed: int = 0, learning_rate: float | None = None) -> tuple[Path, list[float]]:
    """Train a MIDI model on MIDI files as an attacker would (paper §5.1: Adam 1e-4 for MuseGAN,
    3e-4 for SymphonyNet, unless ``learning_rate`` says otherwise); save it; return (path, loss curve).

    The curve of a MuseGAN is its discriminator's loss (its generator's loss does not fall as it learns).
    """
    if steps < 1:
        raise SettingsError("training needs at least one step")
    check_seed(seed)
    if family not in MIDI_FAMILIES:
        raise SettingsError(f"MIDI files train a musegan or symphonynet model, not '{family}'")
    data = midi_files_phrases(paths, build_model(family, preset).phrase_layout)
    model = symbolic_model(family, preset, seed=seed, tracks=data.shape[1])
    generator = torch.Generator().manual_seed(seed)
    if family == "musegan":
        rate = MUSEGAN_LEARNING_RATE if learning_rate is None else learning_rate
        curve = [step.discriminator
                 for step in train_musegan(model, lambda ids: data[ids], len(data), steps, generator, learning_rate=rate)]
    else:
        curve = train_generative_model(model, lambda ids: data[ids], len(data), steps, generator,
                                       learning_rate=SYMPHONYNET_LEARNING_RATE if learning_rate is None else learning_rate)
    return save_checkpoint(model, family, output), curve
