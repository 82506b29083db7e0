"""Train a generative audio model on audio files: a white-box target for `protect --model`.

An attacker's model in miniature: the given family learns on the files' mono mix at its
rate, with Adam, and is saved as a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harmonycloak.cloak.model_input import songs_segments, working_rate_mono
from harmonycloak.errors import SettingsError
from harmonycloak.io.audio import read_audio
from harmonycloak.models.checkpoint import save_checkpoint
from harmonycloak.models.interface import is_audio_model
from harmonycloak.models.registry import build_model
from harmonycloak.optim.training import train_generative_model
from harmonycloak.safeguards import check_seed
from harmonycloak.settings import SEGMENT_S


def audio_files_segments(paths: list[Path], sample_rate_hz: int, segment_samples: int) -> torch.Tensor:
    """Mono segments (segments, segment_samples) at `sample_rate_hz` tiling every file."""
    songs = []
    for path in paths:
        audio = read_audio(path)
        songs.append(working_rate_mono(audio.samples, audio.sample_rate_hz, sample_rate_hz))
    return songs_segments(songs, segment_samples)


def train_audio_model(paths: list[Path], output: Path, family: str = "ar-transformer", preset: str = "default",
                      steps: int = 300, seed: int = 0, segment_s: float = SEGMENT_S) -> tuple[Path, list[float]]:
    """Train `family` on `paths` for `steps` steps; save to `output`; return (path, loss curve)."""
    if steps < 1:
        raise SettingsError("training needs at least one step")
    check_seed(seed)
    model = build_model(family, preset, seed=seed)
    if not is_audio_model(model):
        raise SettingsError(f"'{family}' is a model of MIDI music; train it on MIDI files")
    rate = model.sample_rate_hz
    data = audio_files_segments(paths, rate, round(segment_s * rate))
    curve = train_generative_model(model, lambda ids: data[ids], len(data), steps, torch.Generator().manual_seed(seed))
    return save_checkpoint(model, family, output), curve
