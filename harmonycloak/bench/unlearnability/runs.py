"""Training runs of the attacker: one model family trained from scratch on one version of the data.

For a seed and a target family, every condition trains a fresh model with the *same* initial
weights and the same Adam settings (paired runs: differences between conditions are not
differences of initialisation):

  clean      every training song as it is                                  (paper: (a))
  METHOD     the protected songs replaced by their released versions       ((b), (c), baselines)
  unseen     the training set without the protected songs                  ((d))

Every `evaluate_every` steps the model's loss is measured on three probes (Fig. 5):
  protected_clean      the clean originals of the protected songs (what PS is computed on)
  protected_as_trained the versions of the protected songs the model trains on (absent: unseen)
  others_clean         the other, unprotected training songs

Shapes: a song is (N,) float32; segments are (S, segment_samples).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harmonycloak.bench.unlearnability.results import TrainingResult
from harmonycloak.cloak.model_input import songs_segments
from harmonycloak.settings import SEGMENT_S, WORKING_RATE_HZ

PROBES = ("protected_clean", "protected_as_trained", "others_clean")


@dataclass(frozen=True)
class TrainingSpec:
    """How attackers train (a suite fixes it)."""

    preset: str = "tiny"  # model size preset of every target family
    width: int | None = None  # overrides the preset's model width (None: the preset's)
    steps: int = 150  # Adam steps
    batch_segments: int = 8  # segments per step
    learning_rate: float = 2e-3  # Adam
    evaluate_every: int = 25  # steps between probe evaluations (the curves of Fig. 5)
    segment_s: float = SEGMENT_S  # training segment length (the optimiser's segment)


def build_attacker(family: str, spec: TrainingSpec, seed: int) -> torch.nn.Module:
    """A fresh model of `family` in the suite's size; the seed alone decides its initial weights."""
    from harmonycloak.models.registry import build_model

    overrides = {"width": spec.width} if spec.width is not None else {}
    return build_model(family, spec.preset, seed=seed, **overrides)


def mean_loss(model: torch.nn.Module, segments: torch.Tensor, batch_segments: int = 16) -> float:
    """Mean per-segment generative loss over `segments` (S, samples), without gradients; NaN if none."""
    if len(segments) == 0:
        return float("nan")
    from harmonycloak.optim.minmin import mean_generative_loss

    device = next(model.parameters()).device
    return mean_generative_loss([model], lambda ids: segments[ids].to(device), len(segments), batch_segments)


def train_attacker(family: str, condition: str, training_songs: list[np.ndarray], probes: dict[str, list[np.ndarray]],
                   spec: TrainingSpec, seed: int, sample_rate_hz: int = WORKING_RATE_HZ, device: str = "cpu",
                   after: Callable[[torch.nn.Module], dict] | None = None) -> TrainingResult:
    """Train a fresh `family` model (initial weights fixed by `seed`) on `training_songs`; measure the probes.

    With no training songs (a fully protected set's "unseen" run) the untrained model is measured.
    `after(model)`, if given, judges the trained model; its result is kept as `measures`.
    """
    from harmonycloak.optim.training import train_generative_model

    started = time.perf_counter()
    model = build_attacker(family, spec, seed).to(device)
    segment_samples = round(spec.segment_s * sample_rate_hz)
    data = songs_segments(training_songs, segment_samples).to(device)
    probe_segments = {name: songs_segments(songs, segment_samples) for name, songs in probes.items()}
    curves: dict[str, list[float]] = {name: [] for name in probe_segments}

    def evaluate(trained: torch.nn.Module) -> float:
        for name, segments in probe_segments.items():
            curves[name].append(mean_loss(trained, segments))
        return curves.get("protected_clean", [float("nan")])[-1]

    evaluate(model)  # step 0
    if len(data):
        train_generative_model(model, lambda ids: data[ids.to(data.device)], len(data), spec.steps,
                               torch.Generator().manual_seed(seed), batch_segments=spec.batch_segments,
                               learning_rate=spec.learning_rate, evaluate=evaluate,
                               evaluate_every=spec.evaluate_every)
        steps = [0] + [s for s in range(1, spec.steps + 1) if s % spec.evaluate_every == 0 or s == spec.steps]
    else:
        steps = [0]
    final = {name: values[-1] for name, values in curves.items()}
    elapsed_s = time.perf_counter() - started
    return TrainingResult(family, condition, seed, final, curves, steps, elapsed_s, after(model) if after else {})
