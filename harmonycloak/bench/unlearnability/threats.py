"""The two ways an attacker learns an artist's music, and what each one learned, song by song.

  scratch   (T1, the paper's §5) a model of the family trained from random weights on a
            corpus of which the artist's released songs are a part
  mimicry   (T2, style mimicry) the family's pretrained zoo model fine-tuned on the artist's
            released songs alone, as an attacker imitating one artist does

Both train through `optim.finetune.finetune`, the one loop of the project's attackers (random
crops; T2 also with the gain and speed augmentation an attacker uses on a small album). A codec
LM's attacker tokenises each song once and trains on crops of its tokens, as codec-LM training
scripts do (`attacker_recipe`): a crop starting one sample off the codec's frame grid changes
most of its tokens, so crops fall on the grid and no augmentation reaches the audio. What
an attacker takes ready-made from public models stays frozen in both threats: a codec LM reads
the zoo's codec, the diffusion model is conditioned on the zoo's contrastive encoder.

What a model learned is measured as its generative loss on each song of a probe (the clean
originals of the released songs, the artist's unreleased songs, ...), in eval mode, where
every family's loss is deterministic. A contrastive encoder is measured by the objective it
trains on (`contrastive_song_losses`): each segment's two fixed views must find each other
among every segment of the probe and a fixed set of reference clips by other artists.

Shapes: a song is (N,) float32 mono at the working rate; a probe is a list of songs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from harmonycloak.cloak.model_input import audio_segments
from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.models.registry import build_from_config, preset_config, with_log_floor
from harmonycloak.optim.finetune import FinetuneRecipe, finetune, merge_lora_adapters
from harmonycloak.settings import SEGMENT_S, WORKING_RATE_HZ

THREATS = ("scratch", "mimicry")
# Families grouped as the zoo's four kinds of model: a black-box defender never has a model of the
# attacker's group in its bag.
FAMILY_GROUP = {
    "ar-transformer": "next-frame", "ar-gru": "next-frame", "ar-tcn": "next-frame",
    "codec-lm": "codec-lm", "mel-diffusion": "diffusion", "contrastive": "contrastive",
    # the second and third codec LMs read codecs trained apart from the first: a defender who reads `codec-lm`
    # knows these attackers' kind of model, not their weights nor their tokens
    "codec-lm-2": "codec-lm", "codec-lm-3": "codec-lm",
    # the next-frame transformer trained to read 100 dB of level, as public generators' mels do (the zoo's: 50 dB)
    "ar-transformer-100db": "next-frame",
}
# random view pairs a contrastive encoder is measured on (their mean): with 4, one item's InfoNCE over its
# few draws was so noisy that no T2 positive control's interval cleared 0; 32 draws resolve them
CONTRASTIVE_DRAWS = 32
CONTRASTIVE_DRAW_SEED = 0  # the same views for every model measured: paired conditions


@dataclass(frozen=True)
class ScratchSize:
    """One family's T1 attacker where it differs from the suite's: its size and how long and fast it trains."""

    family: str
    preset: str  # the registry's preset of the family
    steps: int
    learning_rate: float
    # the floor of its log-mel front end in dB of a full-scale sine's band (None: the preset's, -50 dB). Mel
    # front ends of public audio generators clamp the magnitude at 1e-5 (-100 dB of power): what lies more
    # than 50 dB under full scale, noise at 10 dB SNR in most bands among it, only they can read
    log_floor_db: float | None = None
    # a diffusion attacker's probes draw their timesteps from this share of its schedule on (None: all of it).
    # Early in the schedule the target is mostly the noise, the same for seen and unseen music; from the middle
    # on it is mostly the music, which a model that learnt a song knows
    probe_timestep_from: float | None = None


@dataclass(frozen=True)
class ThreatSpec:
    """How the attackers of a suite train and are measured."""

    scratch_preset: str = "small"  # size of the T1 models (the registry's small presets, ~0.1M parameters)
    # T1: from random weights, as long as it takes the corpus to be learnt clearly (no augmentation:
    # the paper's attacker trains on the songs as they are)
    scratch: FinetuneRecipe = FinetuneRecipe(kind="full", steps=400, learning_rate=1e-3, batch_segments=8,
                                             augment_gain=False, augment_speed=False)
    # T2: a short full fine-tune at a tenth of the learning rate, with an attacker's augmentation
    mimicry: FinetuneRecipe = FinetuneRecipe(kind="full", steps=100, learning_rate=1e-4, batch_segments=8)
    scratch_released: int | None = 4  # T1 protects the first this many released clips (None: all): a small
    # corpus around them (`threat_experiment.corpus_size`) is what a from-scratch model can learn clearly in minutes
    probe_segment_s: float = SEGMENT_S  # songs are measured in segments of this length
    # the probes are also measured after these steps of either threat's training, before its last:
    # how an effect grows or fades as the attacker trains on (AttackerRun.losses_at_step)
    probe_steps: tuple[int, ...] = ()
    device: str = "cpu"  # "auto": CUDA when present
    # T1 attackers of these families at another size or pace than `scratch_preset` and `scratch`: a family
    # whose small model learns its corpus too little to measure (the seen/unseen gap) grows where it is cheap
    scratch_sizes: tuple[ScratchSize, ...] = ()

    def __post_init__(self) -> None:
        if not all(isinstance(step, int) and step >= 1 for step in self.probe_steps):
            raise SettingsError(f"the steps to measure at must be whole numbers ≥ 1, not {self.probe_steps}")
        families = [size.family for size in self.scratch_sizes]
        if len(set(families)) != len(families):
            raise SettingsError(f"a family's T1 size is given twice: {', '.join(families)}")

    def scratch_size(self, family: str | None) -> ScratchSize | None:
        return next((size for size in self.scratch_sizes if size.family == family), None)

    def scratch_preset_of(self, family: str) -> str:
        """The registry preset `family`'s T1 attackers have."""
        size = self.scratch_size(family)
        return size.preset if size is not None else self.scratch_preset

    def recipe(self, threat: str, family: str | None = None) -> FinetuneRecipe:
        """How `family`'s attackers train in `threat` (no family: the suite's recipe for every family
        that `scratch_sizes` does not name)."""
        if threat != "scratch":
            return self.mimicry
        size = self.scratch_size(family)
        if size is None:
            return self.scratch
        return replace(self.scratch, steps=size.steps, learning_rate=size.learning_rate)


def scratch_sizes_text(spec: ThreatSpec) -> str:
    """T1's attacker sizes in words: "the registry's `small` size, 400 steps at 0.001 (ar-transformer: `zoo`, ...)"."""
    text = f"the registry's `{spec.scratch_preset}` size, {spec.scratch.steps} steps at {spec.scratch.learning_rate:g}"
    others = "; ".join(f"{size.family}: {scratch_size_text(size)}" for size in spec.scratch_sizes)
    return f"{text} ({others})" if others else text


def scratch_size_text(size: ScratchSize) -> str:
    """One family's T1 size in words: "`zoo`, 400 steps at 0.003, log-mel floor -100 dB, measured at the
    timesteps from 0.5 of its schedule on"."""
    floor = f", log-mel floor {size.log_floor_db:g} dB" if size.log_floor_db is not None else ""
    timesteps = (f", measured at the timesteps from {size.probe_timestep_from:g} of its schedule on"
                 if size.probe_timestep_from is not None else "")
    return f"`{size.preset}`, {size.steps} steps at {size.learning_rate:g}{floor}{timesteps}"


@dataclass
class AttackerRun:
    """One attacker trained on one version of the data (a condition: "clean", "unseen", a method)."""

    threat: str  # "scratch" or "mimicry"
    family: str
    condition: str  # "clean", "unseen" (T1: without the released songs), a method, "<method>+<attack>"
    seed: int
    song_losses: dict[str, list[float]]  # probe → the model's loss on each of its songs after training
    curve: list[float] = field(default_factory=list)  # training loss per step
    elapsed_s: float = 0.0
    measures: dict = field(default_factory=dict)  # other measures of the trained model (e.g. of what it generates)
    # str(step) → probe → losses, after the ThreatSpec's probe_steps before the last (song_losses is the last)
    losses_at_step: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def mean_loss(self, probe: str) -> float:
        values = self.song_losses.get(probe, [])
        return float(np.mean(values)) if values else float("nan")


def attacker_model(threat: str, family: str, seed: int, spec: ThreatSpec) -> GenerativeModel:
    """T1: a fresh model of `family` (initial weights fixed by `seed`) reading the zoo models its zoo
    entry builds on, frozen (an attacker reuses a public codec or encoder as it is); T2: the family's
    zoo model. `family` names a zoo entry: its model family may differ (`codec-lm-2` is a codec LM)."""
    from harmonycloak.settings import resolve_device
    from harmonycloak.zoo import load_zoo_model
    from harmonycloak.zoo.registry import zoo_entry

    device = resolve_device(spec.device)
    if family not in FAMILY_GROUP:
        raise SettingsError(f"'{family}' is not an audio family of the zoo (known: {', '.join(FAMILY_GROUP)})")
    if threat == "mimicry":
        return load_zoo_model(family).to(device)
    if threat != "scratch":
        raise SettingsError(f"unknown threat model '{threat}' (known: {', '.join(THREATS)})")
    preset = spec.scratch_preset_of(family)
    entry = zoo_entry(family)
    model = build_from_config(entry.family, _attacker_config(entry.family, preset, spec, family), seed=seed)
    if preset != "tiny":  # the tiny presets (tests) keep frozen parts of their own size
        for part in entry.depends_on:
            model.attach_pretrained(part, load_zoo_model(part))
    return model.to(device)


def _attacker_config(model_family: str, preset: str, spec: ThreatSpec, family: str):
    """The registry preset of `family`'s T1 attacker, at the log-mel floor its size sets and measured at
    the timesteps it sets, if any."""
    config = preset_config(model_family, preset)
    size = spec.scratch_size(family)
    if size is None:
        return config
    if size.log_floor_db is not None:
        config = with_log_floor(config, 10.0 ** (size.log_floor_db / 10.0))
    if size.probe_timestep_from is not None:
        if not hasattr(config, "evaluation_timestep_from"):
            raise SettingsError(f"{family}'s attacker is no diffusion model: it has no timesteps to be measured at")
        config = replace(config, evaluation_timestep_from=size.probe_timestep_from)
    return config


def song_losses(model: GenerativeModel, songs: Sequence[np.ndarray], segment_s: float = SEGMENT_S,
                references: torch.Tensor | None = None) -> list[float]:
    """The model's loss on each song (the mean over the segments tiling it), in eval mode, no gradients.

    `references` (R, N): clips by other artists whose embeddings become a contrastive encoder's
    negatives (the model as it is now); ignored by the other families.
    """
    was_training = model.training
    model.eval()
    segment_samples = round(segment_s * WORKING_RATE_HZ)
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            if model.family == "contrastive":
                return contrastive_song_losses(model, songs, segment_samples, references)
            return [float(model.generative_loss(audio_segments(song, segment_samples).to(device)).mean())
                    for song in songs]
    finally:
        model.train(was_training)


def contrastive_song_losses(model: GenerativeModel, songs: Sequence[np.ndarray], segment_samples: int,
                            references: torch.Tensor | None, draws: int = CONTRASTIVE_DRAWS) -> list[float]:
    """What a contrastive encoder learned of each song, measured as it trains.

    Every segment of every song is an item, beside the reference clips (other artists). Each of
    `draws` draws takes two views of every item and reference as training does
    (`training_views`: random crops with random gains, from a generator seeded alike for every
    model, so that paired runs see the same views), and scores each item by the symmetric
    InfoNCE it trains on: its first view must pick its second among the second views of all
    items and references, and the other way round. Per song: the mean over its segments and
    the draws. Shapes: items I, references R, embeddings E.
    """
    from harmonycloak.models.contrastive import symmetric_info_nce_per_item

    if references is None:
        raise SettingsError("measuring a contrastive encoder needs reference clips for its negatives")
    device = next(model.parameters()).device
    pieces = [audio_segments(song, segment_samples) for song in songs]
    owner = torch.cat([torch.full((len(piece),), index) for index, piece in enumerate(pieces)]).to(device)
    batch = torch.cat([torch.cat(pieces), references[:, :segment_samples]]).to(device)  # (I + R, N)
    generator = torch.Generator().manual_seed(CONTRASTIVE_DRAW_SEED)
    item_losses = torch.zeros(len(owner), device=device)
    for _ in range(draws):
        first, second = model.training_views(batch, generator)
        losses = symmetric_info_nce_per_item(model.embed_frames(first), model.embed_frames(second),
                                             model.config.temperature)
        item_losses += losses[: len(owner)] / draws
    return [float(item_losses[owner == index].mean()) for index in range(len(songs))]


def train_attacker(threat: str, family: str, condition: str, training_songs: Sequence[np.ndarray],
                   probes: dict[str, Sequence[np.ndarray]], spec: ThreatSpec, seed: int,
                   references: torch.Tensor | None = None,
                   measure: Callable[[GenerativeModel], dict] | None = None) -> AttackerRun:
    """Train (T1) or fine-tune (T2) an attacker of `family` on `training_songs`, then measure every probe.

    Paired runs: for one seed every condition starts from the same weights and draws its crops
    from the same generator (the songs differ, their number and lengths do not, except T1's
    "unseen", which trains without the released songs). With no training songs, the
    untrained (T1) or base (T2) model is measured. `measure(model)`, when given, adds other
    measures of the trained model (what it generates) to the run's `measures`. The probes are
    measured on the way too, after each of `spec.probe_steps` before the last step
    (`losses_at_step`); measuring leaves the training as it was (eval mode, no gradients, no draws).
    """
    started = time.perf_counter()

    def measure_probes(model: GenerativeModel) -> dict[str, list[float]]:
        return {name: song_losses(model, songs, spec.probe_segment_s, references) for name, songs in probes.items()}

    on_the_way: dict[str, dict[str, list[float]]] = {}

    def after_step(step: int, model: GenerativeModel) -> None:
        if step in spec.probe_steps and step < spec.recipe(threat, family).steps:
            on_the_way[str(step)] = measure_probes(model)

    model, curve = trained_attacker(threat, family, training_songs, spec, seed, after_step)
    losses = measure_probes(model)
    measures = measure(model) if measure is not None else {}
    return AttackerRun(threat, family, condition, seed, losses, curve, time.perf_counter() - started, measures,
                       on_the_way)


def trained_attacker(threat: str, family: str, training_songs: Sequence[np.ndarray], spec: ThreatSpec,
                     seed: int, after_step: Callable[[int, GenerativeModel], None] | None = None,
                     ) -> tuple[GenerativeModel, list[float]]:
    """The attacker of `train_attacker` after training, and its training loss per step (no songs:
    the untrained (T1) or base (T2) model and an empty curve); `after_step` as in `optim.finetune`."""
    model = attacker_model(threat, family, seed, spec)
    curve: list[float] = []
    if training_songs:
        recipe = attacker_recipe(spec.recipe(threat, family), model)
        curve = finetune(model, training_songs, recipe, seed, after_step=after_step)
        if recipe.kind == "lora":
            merge_lora_adapters(model)
    return model, curve


def attacker_recipe(recipe: FinetuneRecipe, model: GenerativeModel) -> FinetuneRecipe:
    """How an attacker trains `model`: `recipe`, except for a model of codec tokens, whose
    attacker tokenises each song once and crops the tokens: crops on the codec's frame grid
    (`crop_grid_samples`), with no gain or speed augmentation (module doc)."""
    grid = crop_grid_samples(model)
    if grid == 1:
        return recipe
    return replace(recipe, crop_grid_samples=grid, augment_gain=False, augment_speed=False, tokenise_songs=True)


def crop_grid_samples(model: GenerativeModel) -> int:
    """Working-rate samples a training crop of `model` starts on a multiple of: a codec frame for a
    model of codec tokens (`token_hop_samples`), else 1 (anywhere)."""
    hop = getattr(model, "token_hop_samples", None)
    if hop is None:
        return 1
    grid = hop * WORKING_RATE_HZ / model.sample_rate_hz  # the crops are cut at the working rate
    if grid != int(grid):
        raise SettingsError(f"a codec frame of {hop} samples at {model.sample_rate_hz} Hz is no whole number of "
                            f"samples at {WORKING_RATE_HZ} Hz")
    return int(grid)

