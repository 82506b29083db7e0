"""Train a generative audio model on audio files: a white-box target for `protect --model`.

An attacker's model in miniature: the given family learns next-frame prediction on the
files' mono mix at the working rate, with Adam, and is saved as a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch

from harmonycloak.cloak.problem import segment_starts
from harmonycloak.errors import SettingsError
from harmonycloak.io.audio import read_audio
from harmonycloak.models.checkpoint import save_checkpoint
from harmonycloak.models.registry import build_model
from harmonycloak.optim.training import train_generative_model
from harmonycloak.pipeline import to_working_rate


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
    model = build_model(family, preset, seed=seed)
    rate = model.config.frontend.sample_rate_hz
    data = audio_segments(paths, rate, round(segment_s * rate))
    curve = train_generative_model(model, lambda ids: data[ids], len(data), steps, torch.Generator().manual_seed(seed))
    return save_checkpoint(model, family, output), curve
