"""`harmonycloak bench attackers`: how long the benchmark's attackers take to train, and what
that makes a suite's threat models cost on this machine.

For each audio family and threat model (T1: a model of the suite's T1 size from random weights;
T2: the zoo model fine-tuned), the attacker trains through the same path the benchmark uses
(`threats.attacker_model`, `optim.finetune.finetune`, the suite's recipe) on clips of the
example song as long as the suite's songs, a few warm-up steps first (kernel choice, caches), then `steps` timed steps.
The suite's training time is then Σ over families and threats of
seeds × conditions × the recipe's steps × seconds per step: the trainings alone, without the
releases' optimisation, the measurements or the MIDI families.

Shapes: songs are (N,) float32 mono at the working rate.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from harmonycloak.errors import SettingsError

WARMUP_STEPS = 3  # untimed steps before the timed ones


def example_clips(clip_s: float) -> list[np.ndarray]:
    """The example song cut into consecutive clips of `clip_s` (the rest dropped), mono at the working rate."""
    from harmonycloak.cloak.model_input import working_rate_mono
    from harmonycloak.examples import example_path
    from harmonycloak.io.audio import read_audio
    from harmonycloak.settings import WORKING_RATE_HZ

    audio = read_audio(example_path())
    mono = working_rate_mono(audio.samples, audio.sample_rate_hz)
    length = round(clip_s * WORKING_RATE_HZ)
    return [mono[start:start + length] for start in range(0, len(mono) - length + 1, length)]


def seconds_per_step(family: str, threat: str, spec, steps: int, songs: list[np.ndarray], seed: int = 0) -> float:
    """Wall seconds of one training step of `family`'s attacker in `threat` (after the warm-up)."""
    from harmonycloak.bench.unlearnability.threats import attacker_model, attacker_recipe
    from harmonycloak.optim.finetune import finetune

    model = attacker_model(threat, family, seed, spec)
    recipe = attacker_recipe(spec.recipe(threat, family), model)
    finetune(model, songs, replace(recipe, steps=WARMUP_STEPS), seed)
    _synchronise(model)
    started = time.perf_counter()
    finetune(model, songs, replace(recipe, steps=steps), seed + 1)
    _synchronise(model)
    return (time.perf_counter() - started) / steps


def _synchronise(model) -> None:
    device = next(model.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def suite_trainings(suite, threat: str) -> int:
    """How many attackers one family trains in `threat` over the suite's seeds: every condition but
    T2's "base" (the zoo model measured as it is)."""
    from harmonycloak.bench.unlearnability.threat_experiment import conditions

    trained = [name for name in conditions(threat, suite.methods_for(threat)) if name != "base"]
    return len(suite.seeds) * len(trained)


def run_attacker_speed(suite_name: str, device: str, steps: int, families: tuple[str, ...] | None = None,
                       json_path: Path | None = None, log=print) -> dict:
    """Time every audio family's attackers of suite `suite_name` on `device`; print and return the figures."""
    from harmonycloak.bench.unlearnability.suites import get_suite
    from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP
    from harmonycloak.settings import resolve_device

    if steps < 1:
        raise SettingsError(f"--steps must be at least 1, not {steps}")
    suite = get_suite(suite_name)
    chosen = families or tuple(family for family in suite.families_for_threats if family in FAMILY_GROUP)
    unknown = [family for family in chosen if family not in FAMILY_GROUP]
    if unknown:
        raise SettingsError(f"not an audio family of the benchmark: {', '.join(unknown)}")
    spec = replace(suite.threats, device=str(resolve_device(device)))
    songs = example_clips(suite.data.song_s)
    rows = []
    for family in chosen:
        for threat in suite.threat_models:
            step_s = seconds_per_step(family, threat, spec, steps, songs)
            recipe = spec.recipe(threat, family)
            trainings = suite_trainings(suite, threat)
            rows.append({"family": family, "threat": threat, "seconds_per_step": step_s,
                         "steps": recipe.steps, "batch_segments": recipe.batch_segments,
                         "training_s": step_s * recipe.steps, "trainings": trainings,
                         "suite_training_s": step_s * recipe.steps * trainings})
            log(f"{family:15s} {threat:8s} {1000 * step_s:8.1f} ms/step  "
                f"{step_s * recipe.steps:7.1f} s per training of {recipe.steps} steps  "
                f"× {trainings} trainings = {step_s * recipe.steps * trainings / 60:6.1f} min")
    total_s = sum(row["suite_training_s"] for row in rows)
    figures = {"suite": suite.name, "device": spec.device, "device_name": _device_name(spec.device),
               "torch": torch.__version__, "threads": torch.get_num_threads(), "timed_steps": steps,
               "rows": rows, "suite_training_s": total_s}
    log(f"suite {suite.name}: the threat models' trainings take {total_s / 3600:.2f} h on {figures['device_name']} "
        "(one after another; without releases, measurements and the MIDI families)")
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU, {torch.get_num_threads()} thread(s)"
