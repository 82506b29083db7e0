"""Train one zoo entry, exactly as its registry entry says, and write its weights and card.

    harmonycloak zoo train NAME [--out DIR]

The recipe, the same for every likelihood-trained family: the model is built from the entry's
config with the entry's seed (`models.registry.build_from_config`), the weights of the
entries it builds on are loaded into it (frozen), and AdamW runs for ``steps`` steps on
batches drawn by one torch.Generator seeded with the entry's seed, the learning rate rising
linearly over ``warmup_steps`` and then falling on a cosine to a tenth, gradients clipped to
norm 1. The training loss is the model's ``training_loss(batch, generator)`` where it has one
(contrastive pairs, diffusion timesteps and noise drawn from the trainer's generator), else
the mean of ``generative_loss(batch)``. MuseGAN trains adversarially (`_train_gan`); where its
entry says so, the weights kept are those of the checkpoint whose generator writes bars closest to
the corpus's (`GanSelection`), not the last.

Scores on the card: the held-out loss of the trained model (its weights rounded to float16,
as stored) and of the same model before training (same seed), both with the model in eval
mode, where every stochastic loss uses fixed draws (see each family's docstring), on the
entry's fixed held-out batch. The training loss is the mean of the last tenth of the steps up to
the weights kept.

Training runs on one thread (``torch.set_num_threads(1)``): with a fixed thread count the
same entry gives the same weights on the same machine and torch build.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from harmonycloak.io.atomic import atomic_output
from harmonycloak.errors import ModelError
from harmonycloak.models.registry import build_from_config, config_to_dict
from harmonycloak.zoo.data import EntryData, load_entry_data
from harmonycloak.zoo.registry import ZooEntry, zoo_entry
from harmonycloak.zoo.store import (
    load_zoo_model,
    read_manifest,
    round_to_stored_precision,
    save_zoo_weights,
    weights_dir,
)

EVALUATION_BATCH = 16  # held-out examples per forward pass when scoring
SELECTION_REFERENCE_PHRASES = 256  # training phrases a GAN's checkpoints are compared with
SELECTION_WRITTEN_PHRASES = 64  # phrases a GAN's generator writes at each checkpoint compared


def parameter_count(model: nn.Module) -> int:
    """Parameters of the model that its own training moves (frozen parts it builds on excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_entry_model(entry: ZooEntry, dependency_folder: Path | None = None) -> nn.Module:
    """The entry's model before training: built from its seed, dependencies loaded and frozen."""
    model = build_from_config(entry.family, entry.config, entry.seed)
    for dependency in entry.depends_on:
        folder = dependency_folder if dependency_folder and (Path(dependency_folder) / f"{dependency}.pt").is_file() \
            else weights_dir()
        model.attach_pretrained(dependency, load_zoo_model(dependency, folder))
    return model


def gan_discriminator_loss(model: nn.Module, rolls: Tensor, seed: int = 0) -> Tensor:
    """A MuseGAN's discriminator loss per example (B,): −log D(x_i) − log(1 − D(G(z_i))), with
    latents z_i from a generator seeded with `seed` (the same fakes at every call).

    log 4 ≈ 1.386 when the discriminator cannot tell real music from the generator's: how far
    below that it falls on held-out real music is what it learned of real music.
    """
    fake = model.generator_network(model.sample_latents(rolls.shape[0], torch.Generator().manual_seed(seed)))
    return model.discriminator_losses(model.features(rolls), fake)


def heldout_loss(model: nn.Module, heldout: Tensor) -> float:
    """Mean loss over the held-out batch, the model in eval mode (fixed draws), no gradients.

    The loss is the model's generative loss, except for a MuseGAN: its discriminator loss on
    the held-out phrases against fixed fakes (`gan_discriminator_loss`).
    """
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, heldout.shape[0], EVALUATION_BATCH):
            chunk = heldout[start:start + EVALUATION_BATCH]
            is_gan = model.family == "musegan"
            loss = gan_discriminator_loss(model, chunk, start) if is_gan else model.generative_loss(chunk)
            total += float(loss.sum())
    model.train(was_training)
    return total / heldout.shape[0]


def learning_rate_at(step: int, entry: ZooEntry) -> float:
    """Linear warm-up to the entry's rate, then cosine decay to 10 % of it at the last step."""
    if step < entry.warmup_steps:
        return entry.learning_rate * (step + 1) / entry.warmup_steps
    progress = (step - entry.warmup_steps) / max(1, entry.steps - entry.warmup_steps)
    return entry.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _train_likelihood(model: nn.Module, entry: ZooEntry, data: EntryData, generator: torch.Generator,
                      log: Callable[[str], None]) -> tuple[list[float], dict]:
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=entry.learning_rate, weight_decay=entry.weight_decay)
    curve, started = [], time.monotonic()
    model.train()
    for step in range(entry.steps):
        for group in optimiser.param_groups:
            group["lr"] = learning_rate_at(step, entry)
        batch = data.sample(entry.batch, generator)
        optimiser.zero_grad(set_to_none=True)
        loss = model.training_loss(batch, generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        curve.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == entry.steps:
            recent = curve[-50:]
            log(f"{entry.name} step {step + 1}/{entry.steps} loss {sum(recent) / len(recent):.4f} "
                f"({time.monotonic() - started:.0f} s)")
    return curve, {}


@dataclass
class GanSelection:
    """Which of a GAN's checkpoints is kept: the one whose generator writes bars closest to the
    corpus's, as an image GAN is chosen by its FID (`midi_measures.style_distance`: the Fréchet
    distance of `bar_descriptors` between `SELECTION_WRITTEN_PHRASES` phrases it writes and
    `references`, training phrases drawn apart from the training batches). A GAN's game does not
    settle: what its generator writes grows and thins along training, so its last weights are
    only one draw of that swing.

    Attributes:
        references: phrases (B, M, T, 128) of the training split.
        fd_by_step: step → the distance measured after it.
        best_step: the step of the closest checkpoint (None before any).
        best_state: a copy of the model's weights there.
    """

    references: Tensor
    fd_by_step: dict[int, float] = field(default_factory=dict)
    best_step: int | None = None
    best_state: dict | None = None

    def consider(self, model: nn.Module, step: int) -> float:
        """Measure the model's written bars after `step`; keep its weights when they are the closest yet."""
        from harmonycloak.bench.unlearnability.midi_measures import style_distance

        distance = style_distance(model, model.family, self.references, SELECTION_WRITTEN_PHRASES,
                                  model.phrase_layout.steps_per_bar, seed=0)
        self.fd_by_step[step] = distance
        if self.best_step is None or distance < self.fd_by_step[self.best_step]:
            self.best_step, self.best_state = step, copy.deepcopy(model.state_dict())
        return distance


def _train_gan(model: nn.Module, entry: ZooEntry, data: EntryData, generator: torch.Generator,
               log: Callable[[str], None]) -> tuple[list[float], dict]:
    """Adversarial training; with `entry.select_every_steps`, the closest checkpoint's weights are
    loaded at the end (`GanSelection`), and the card's notes say which and why."""
    from harmonycloak.models.musegan import MUSEGAN_ADAM_BETAS

    discriminator = torch.optim.Adam(model.discriminator_network.parameters(), lr=entry.learning_rate,
                                     betas=MUSEGAN_ADAM_BETAS)
    generator_optimiser = torch.optim.Adam(model.generator_network.parameters(), lr=entry.learning_rate,
                                           betas=MUSEGAN_ADAM_BETAS)
    selection = None
    if entry.select_every_steps:
        selection = GanSelection(data.sample(SELECTION_REFERENCE_PHRASES, torch.Generator().manual_seed(entry.seed + 2)))
    curve, started = [], time.monotonic()
    model.train()
    for step in range(entry.steps):
        real = model.features(data.sample(entry.batch, generator))
        losses = model.adversarial_step(real, discriminator, generator_optimiser, generator)
        curve.append(losses.discriminator)
        if (step + 1) % 50 == 0 or step + 1 == entry.steps:
            log(f"{entry.name} step {step + 1}/{entry.steps} D loss {sum(curve[-50:]) / len(curve[-50:]):.4f} "
                f"G loss {losses.generator:.4f} ({time.monotonic() - started:.0f} s)")
        if selection is not None and (step + 1) % entry.select_every_steps == 0:
            log(f"{entry.name} step {step + 1}: written bars at FD {selection.consider(model, step + 1):.4f} "
                f"from the corpus's")
    if selection is None or selection.best_step is None:
        return curve, {}
    model.load_state_dict(selection.best_state)
    log(f"{entry.name}: kept the weights of step {selection.best_step} (FD {selection.fd_by_step[selection.best_step]:.4f})")
    return curve[:selection.best_step], {
        "selected_step": selection.best_step,
        "selection": f"the checkpoint, of every {entry.select_every_steps} steps, whose "
                     f"{SELECTION_WRITTEN_PHRASES} written phrases are closest to {SELECTION_REFERENCE_PHRASES} "
                     "training phrases (Frechet distance of bar descriptors)",
        "selection_fd_by_step": {str(step): round(fd, 5) for step, fd in selection.fd_by_step.items()},
    }


def train_entry(name: str, out: Path | None = None, log: Callable[[str], None] = print,
                command: str | None = None) -> dict:
    """Train zoo entry `name`, write ``OUT/NAME.pt`` (and the manifest) and ``OUT/NAME.json``; return the card.

    Args:
        out: the folder to write into (default: the package's weights folder).
        command: the command line recorded on the card (default: the `zoo train` command).
    """
    entry = zoo_entry(name)
    out = Path(out) if out is not None else weights_dir()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        started = time.monotonic()
        model = build_entry_model(entry, out)
        data = load_entry_data(entry.data, entry.segment_s, phrase=_phrase(model), max_heldout=entry.max_heldout)
        log(f"{entry.name}: {parameter_count(model):,} parameters; data loaded in {time.monotonic() - started:.0f} s")
        _prepare_evaluation(model, entry, data)
        untrained = heldout_loss(model, data.heldout)
        generator = torch.Generator().manual_seed(entry.seed)
        trainer = _train_gan if entry.family == "musegan" else _train_likelihood
        training_started = time.monotonic()
        curve, notes = trainer(model, entry, data, generator, log)
        wall_s = time.monotonic() - training_started
        _prepare_evaluation(model, entry, data)
        round_to_stored_precision(model)
        trained = heldout_loss(model, data.heldout)
    finally:
        torch.set_num_threads(threads)
    path = save_zoo_weights(model, entry.name, entry.family, out)
    tail = curve[-max(1, len(curve) // 10):]
    card = {
        "name": entry.name,
        "family": entry.family,
        "description": entry.description,
        "command": command or f"harmonycloak zoo train {entry.name}" + ("" if out == weights_dir() else f" --out {out}"),
        "parameters": parameter_count(model),
        "parameters_total": sum(p.numel() for p in model.parameters()),
        "weights_file": path.name,
        "weights_sha256": read_manifest(out)[path.name],
        "weights_bytes": path.stat().st_size,
        "config": config_to_dict(model.config),
        "depends_on": list(entry.depends_on),
        "steps": entry.steps,
        "batch": entry.batch,
        "learning_rate": entry.learning_rate,
        "warmup_steps": entry.warmup_steps,
        "weight_decay": entry.weight_decay,
        "seed": entry.seed,
        "segment_s": entry.segment_s,
        "wall_time_s": round(wall_s, 1),
        "train_loss": round(sum(tail) / len(tail), 5),
        "heldout_loss": round(trained, 5),
        "untrained_heldout_loss": round(untrained, 5),
        "heldout_examples": int(data.heldout.shape[0]),
        "loss": _loss_name(model),
        "torch": torch.__version__,
        "machine": f"{platform.machine()}, 1 thread",
        "data": data.describe,
        **notes,
    }
    with atomic_output(out / f"{entry.name}.json", ModelError) as temporary:
        temporary.write_text(json.dumps(card, indent=1) + "\n")
    log(f"{entry.name}: held-out loss {trained:.4f} (untrained {untrained:.4f}), train loss {card['train_loss']:.4f}, "
        f"{wall_s / 60:.1f} min; wrote {path}")
    return card


def _prepare_evaluation(model: nn.Module, entry: ZooEntry, data: EntryData) -> None:
    """Let a model fix what its evaluation loss needs (the encoder's stored negatives) from
    training data drawn by its own generator (seed + 1), the same draws before and after training."""
    if model.family == "contrastive":
        model.prepare_evaluation(data.sample, torch.Generator().manual_seed(entry.seed + 1))


def _phrase(model: nn.Module) -> tuple[int, int] | None:
    """(steps per bar, bars per phrase) of a MIDI model; None for audio models."""
    if model.kind != "midi":
        return None
    return model.phrase_layout.steps_per_bar, model.phrase_layout.bars


def _loss_name(model: nn.Module) -> str:
    """What the card's losses measure, from the model's own docstring summary."""
    from harmonycloak.models.audio_ar import NextFrameModel
    from harmonycloak.models.symphonynet import SymphonyNetModel

    if isinstance(model, NextFrameModel):
        return "next-frame log-mel mean squared error, per example"
    if isinstance(model, SymphonyNetModel):
        return "next-step negative log-likelihood, nats per (track, pitch) cell"
    if model.family == "musegan":
        return "discriminator loss on held-out real phrases and fixed generated ones, nats (log 4 = chance)"
    return model.LOSS_DESCRIPTION
