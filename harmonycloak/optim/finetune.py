"""Fine-tuning a pretrained generative model on one artist's songs: the style-mimicry attacker.

An attacker takes a public pretrained model and adapts it to an album in one of three ways:
"full" (every weight trains), "last-layers" (only the layers nearest the output train) or
"lora" (every weight stays frozen and small low-rank adapters beside them train: *LoRA:
Low-Rank Adaptation of Large Language Models*, Hu et al. 2021). Each training crop is cut at
random from a song and augmented as an attacker stretching a small album would: played
faster or slower (speed and pitch together, by resampling) and made louder or quieter.
Every random choice (the adapters' initial weights, which crop, its speed, its gain) is drawn
from one seeded torch.Generator apart from applying it, so a seed fixes the whole run. A model
of codec tokens may instead read each song's tokens once and train on crops of those, as
codec-LM training does (`tokenise_songs`).
Training itself is `optim.training.train_on_batches`, the loop every attacker here uses.

Shapes: N samples of a song, L samples of a crop, B crops per batch, r adapter rank; every
song is mono at the working rate R.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from harmonycloak.cloak.model_input import audio_crops, audio_segments, segment_starts
from harmonycloak.errors import SettingsError
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.optim.training import train_on_batches
from harmonycloak.resampling import resample
from harmonycloak.settings import FINETUNE_KINDS, SEGMENT_S, WORKING_RATE_HZ

LORA_LAYER_KINDS = ("linear", "conv", "attention")
# Speed factors are multiples of 1 / SPEED_GRID: the resampler then works with the ratio
# k = m / 100 (m ≤ a few hundred), whose polyphase filter stays short.
SPEED_GRID = 100


@dataclass(frozen=True)
class FinetuneRecipe:
    """How the attacker fine-tunes: which weights move, for how long, on what crops."""

    kind: str = "full"  # "full" (every weight), "last-layers" or "lora" (adapters beside frozen weights)
    steps: int = 500  # Adam steps
    learning_rate: float = 1e-4  # a tenth of training from scratch (1e-3): fine-tuning stays near the base
    batch_segments: int = 8  # crops per step, as when training from scratch
    segment_s: float = SEGMENT_S  # crop length: the segment the models train on
    # last-layers: the last `last_layers` layers in the order the forward pass reaches them (a layer:
    # a module owning parameters itself; see `layer_order`), each with only its own parameters ...
    last_layers: int = 2
    # ... or, when given, these modules by their names in model.named_modules(), each with everything under it
    trainable_modules: tuple[str, ...] = ()
    lora_rank: int = 8  # r of every adapter; the LoRA paper finds 1–8 enough
    lora_alpha: float = 8.0  # the update B·A is scaled by alpha / r; alpha = r, as the paper's first try
    lora_layers: tuple[str, ...] = LORA_LAYER_KINDS  # which layers get adapters: see `add_lora_adapters`
    random_crop: bool = True  # crops start anywhere in a song; False: at the starts of the segments tiling it
    # random crops start at multiples of this many samples: 1 anywhere; a codec LM's attacker trains on the
    # tokens of whole songs, which a crop keeps only on the codec's frame grid (`threats.attacker_recipe`)
    crop_grid_samples: int = 1
    # a model of codec tokens (`token_hop_samples`) may train on each song's tokens, read once, and crop those
    # (`token_crop_batch`): the crops on its frame grid, with no augmentation, which would reach only the audio
    tokenise_songs: bool = False
    augment_gain: bool = True  # change each crop's level ...
    gain_db_range: tuple[float, float] = (-6.0, 6.0)  # ... by a gain drawn uniformly in dB from here
    augment_speed: bool = True  # play each crop faster or slower (pitch moves with speed) ...
    speed_range: tuple[float, float] = (0.9, 1.1)  # ... by a factor k from here (multiples of 1 / SPEED_GRID)

    def __post_init__(self) -> None:
        if self.kind not in FINETUNE_KINDS:
            raise SettingsError(f"the fine-tuning kind must be one of {', '.join(FINETUNE_KINDS)}, not '{self.kind}'")
        for name in ("steps", "batch_segments", "last_layers", "lora_rank", "crop_grid_samples"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise SettingsError(f"{name.replace('_', ' ')} must be a whole number ≥ 1, not {getattr(self, name)}")
        for name in ("learning_rate", "segment_s", "lora_alpha"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise SettingsError(f"{name.replace('_', ' ')} must be a positive number, not {getattr(self, name)}")
        if self.segment_samples < 1:
            raise SettingsError(f"a crop of {self.segment_s} s holds no sample at {WORKING_RATE_HZ} Hz")
        unknown = set(self.lora_layers) - set(LORA_LAYER_KINDS)
        if unknown or not self.lora_layers:
            raise SettingsError(f"LoRA layers must be some of {', '.join(LORA_LAYER_KINDS)}, not {self.lora_layers}")
        if self.tokenise_songs and (self.augment_gain or self.augment_speed or not self.random_crop):
            raise SettingsError("training on the tokens of whole songs takes random crops without gain or speed "
                                "augmentation: the tokens are read once, from the songs as they are")
        low_db, high_db = self.gain_db_range
        if not (math.isfinite(low_db) and math.isfinite(high_db) and low_db <= high_db):
            raise SettingsError(f"the gain range must be two finite dB values, low first, not {self.gain_db_range}")
        low, high = self.speed_range
        if not (0 < low <= high < math.inf) or not speed_numerators(self.speed_range):
            raise SettingsError(f"the speed range must hold a multiple of 1/{SPEED_GRID} above 0, "
                                f"low first, not {self.speed_range}")

    @property
    def segment_samples(self) -> int:
        """L, the crop length in samples at the working rate."""
        return round(self.segment_s * WORKING_RATE_HZ)


# ---------------------------------------------------------------------------------------------
# Augmentation: draw each crop's random choices, then cut it.


@dataclass(frozen=True)
class CropDraw:
    """The random choices of one training crop, drawn apart from cutting it."""

    song: int  # which song of the album
    start_sample: int  # where the crop's source window starts in that song
    speed: Fraction  # k: the source window of ⌈k·L⌉ samples is played k times as fast, into L samples
    gain_db: float  # level change of the crop


def speed_numerators(speed_range: tuple[float, float]) -> range:
    """The m with m / SPEED_GRID inside `speed_range` (ends included)."""
    low, high = speed_range
    # rounding first: 0.9 · 100 is 90.00000000000001 in floating point, and 90 belongs in the range
    return range(math.ceil(round(low * SPEED_GRID, 9)), math.floor(round(high * SPEED_GRID, 9)) + 1)


def source_samples(segment_samples: int, speed: Fraction) -> int:
    """Samples of song that one crop of L samples played `speed` times as fast reads: ⌈k·L⌉."""
    return math.ceil(segment_samples * speed)


def draw_crop(song_samples: Sequence[int], segment_samples: int, recipe: FinetuneRecipe,
              generator: torch.Generator) -> CropDraw:
    """Draw one crop's speed, place and gain (in that order, from `generator`).

    With `recipe.random_crop` every (song, start) at which the source window fits lies equally
    likely, the starts on multiples of `recipe.crop_grid_samples` (a song shorter than the
    window: start 0, the rest silence); without it, every segment tiling the album
    (`model_input.segment_starts`) does.
    """
    speed = Fraction(1)
    if recipe.augment_speed:
        numerators = speed_numerators(recipe.speed_range)
        speed = Fraction(numerators[int(torch.randint(len(numerators), (), generator=generator))], SPEED_GRID)
    window_samples = source_samples(segment_samples, speed)
    grid = recipe.crop_grid_samples
    if recipe.random_crop:
        counts = [max(n - window_samples, 0) // grid + 1 for n in song_samples]
    else:
        tilings = [segment_starts(max(n, segment_samples), segment_samples) for n in song_samples]
        counts = [len(starts) for starts in tilings]
    index = int(torch.randint(sum(counts), (), generator=generator))
    song = bisect.bisect_right(list(itertools.accumulate(counts)), index)
    offset = index - sum(counts[:song])
    start = offset * grid if recipe.random_crop else int(tilings[song][offset])
    gain_db = 0.0
    if recipe.augment_gain:
        low_db, high_db = recipe.gain_db_range
        gain_db = low_db + (high_db - low_db) * float(torch.rand((), generator=generator, dtype=torch.float64))
    return CropDraw(song, start, speed, gain_db)


def cut_crop(songs: Sequence[np.ndarray], draw: CropDraw, segment_samples: int) -> Tensor:
    """The crop a draw describes, (L,) float32.

    The source window of ⌈k·L⌉ samples from the draw's start (silence past the song's end) is
    read as if recorded at k·R and resampled to R: it plays k times as fast, every frequency
    × k. Its first L samples are scaled by 10^(gain_db / 20).
    """
    window = audio_crops(songs[draw.song], torch.tensor([draw.start_sample]),
                         source_samples(segment_samples, draw.speed))[0]
    if draw.speed != 1:
        # the resampler reads only the ratio of its two rates: k·R / R = numerator / denominator
        window = torch.from_numpy(resample(window.numpy(), draw.speed.numerator, draw.speed.denominator)
                                  .astype(np.float32))
    # ⌈k·L⌉ samples resample to ⌈⌈k·L⌉ / k⌉ ≥ L
    return window[:segment_samples] * 10.0 ** (draw.gain_db / 20.0)


def draw_batch(song_samples: Sequence[int], recipe: FinetuneRecipe, generator: torch.Generator) -> list[CropDraw]:
    """The draws of `recipe.batch_segments` crops of songs of these lengths, in order."""
    return [draw_crop(song_samples, recipe.segment_samples, recipe, generator) for _ in range(recipe.batch_segments)]


def crop_batch(songs: Sequence[np.ndarray], recipe: FinetuneRecipe, generator: torch.Generator) -> Tensor:
    """`recipe.batch_segments` crops of the album, drawn then cut: (B, L) float32."""
    draws = draw_batch([len(song) for song in songs], recipe, generator)
    return torch.stack([cut_crop(songs, draw, recipe.segment_samples) for draw in draws])


def song_tokens(model: GenerativeModel, songs: Sequence[np.ndarray], segment_samples: int) -> list[Tensor]:
    """The codes (T'ᵢ, K) of each whole song, read once by `model.tokens` on its device; a song shorter
    than a crop is read with the silence a crop of it is padded with (`cut_crop`)."""
    device = next(model.parameters()).device
    return [model.tokens(torch.from_numpy(np.pad(song, (0, max(segment_samples - len(song), 0))))[None]
                         .to(device))[0] for song in songs]


def token_crop_batch(tokens: Sequence[Tensor], song_samples: Sequence[int], recipe: FinetuneRecipe,
                     generator: torch.Generator) -> Tensor:
    """The codes of the crops `crop_batch` would cut (the same draws from `generator`), cropped from
    each song's codes (`song_tokens`): (B, L // grid, K), the grid a frame of the codes.

    Away from the crop's edges they are the codes of the crop read alone; within the codec's
    receptive field of its edges, the crop read alone sees silence past them where these saw the song."""
    grid, frames = recipe.crop_grid_samples, recipe.segment_samples // recipe.crop_grid_samples
    return torch.stack([tokens[draw.song][draw.start_sample // grid:][:frames]
                        for draw in draw_batch(song_samples, recipe, generator)])


# ---------------------------------------------------------------------------------------------
# Which weights train: LoRA adapters, the last layers.


class LowRankUpdate(nn.Module):
    """LoRA as a parametrisation of a frozen weight W (out, in, ...): W + (alpha / r) · B·A.

    A (blocks, r, fan_in) starts Gaussian with standard deviation 1/√fan_in, B (blocks,
    out / blocks, r) at zero (as the LoRA paper), so the weight starts exactly W and the model
    its base self. W's rows may stack `blocks` separate projections (an attention layer's
    query, key and value): each gets its own A and B. Because the update is applied to the
    weight, it reaches every path that reads the weight, PyTorch's fused attention included.
    """

    def __init__(self, weight: Tensor, rank: int, alpha: float, generator: torch.Generator, blocks: int = 1) -> None:
        super().__init__()
        fan_in = math.prod(weight.shape[1:])
        a = torch.randn(blocks, rank, fan_in, generator=generator, dtype=weight.dtype) / math.sqrt(fan_in)
        self.lora_a = nn.Parameter(a.to(weight.device))
        self.lora_b = nn.Parameter(torch.zeros(blocks, weight.shape[0] // blocks, rank, dtype=weight.dtype,
                                               device=weight.device))
        self.scale = alpha / rank

    def forward(self, weight: Tensor) -> Tensor:
        update = (self.lora_b @ self.lora_a).reshape(weight.shape)  # (blocks, out / blocks, fan_in) → W's shape
        return weight + self.scale * update


def add_lora_adapters(model: nn.Module, rank: int, alpha: float, layer_kinds: Sequence[str],
                      generator: torch.Generator) -> list[str]:
    """Freeze every parameter of `model` and put a trainable `LowRankUpdate` on each weight of the
    chosen kinds of layer; returns the adapted weights' names, in registration order.

    Kinds: "linear", every nn.Linear; "conv", every nn.Conv1d and nn.Conv2d (A reads the
    flattened kernel, in/groups × kernel); "attention", every nn.MultiheadAttention: query, key
    and value projections (one adapter each, packed or not) and the output projection, which is
    an attention's own (not a "linear") even though it is an nn.Linear. Biases, norms,
    embeddings and recurrent layers get none: PyTorch keeps computed copies of a parametrised
    nn.GRU or nn.LSTM weight inside the module, and a model holding them cannot be copied.
    A weight the model keeps frozen itself (a pretrained codec or encoder it reads through) gets none.
    """
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    model.requires_grad_(False)
    modules = dict(model.named_modules())
    attentions = {name: module for name, module in modules.items() if isinstance(module, nn.MultiheadAttention)}
    output_projections = {id(module.out_proj) for module in attentions.values()}
    targets: list[tuple[str, nn.Module, str, int]] = []  # (module name, module, weight name, blocks)
    for name, module in modules.items():
        if "attention" in layer_kinds and name in attentions:
            if module._qkv_same_embed_dim:  # one packed (3·D, D) in-projection
                targets.append((name, module, "in_proj_weight", 3))
            else:
                targets.extend((name, module, f"{projection}_proj_weight", 1) for projection in "qkv")
        elif isinstance(module, nn.Linear) and id(module) in output_projections:
            if "attention" in layer_kinds:
                targets.append((name, module, "weight", 1))
        elif (("linear" in layer_kinds and isinstance(module, nn.Linear))
              or ("conv" in layer_kinds and isinstance(module, (nn.Conv1d, nn.Conv2d)))):
            targets.append((name, module, "weight", 1))
    targets = [target for target in targets if id(getattr(target[1], target[2])) not in frozen]
    if not targets:
        raise SettingsError(f"the model has no layer of the kinds {', '.join(layer_kinds)} to put LoRA adapters on")
    for _, module, weight, blocks in targets:
        update = LowRankUpdate(getattr(module, weight), rank, alpha, generator, blocks)
        parametrize.register_parametrization(module, weight, update)
    return [f"{name}.{weight}" if name else weight for name, _, weight, _ in targets]


def merge_lora_adapters(model: nn.Module) -> None:
    """Fold every LoRA adapter into its weight (W ← W + (alpha / r) · B·A) and remove it: the model
    computes what it computed with them and has its base layout again (a plain checkpoint)."""
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        # deep copies of a parametrised module share its class, from which removing a parametrisation
        # deletes the weight's accessor: give this module a class of its own first
        shared = type(module)
        module.__class__ = type(shared.__name__, shared.__bases__, dict(shared.__dict__))
        for weight in list(module.parametrizations):
            if all(isinstance(step, LowRankUpdate) for step in module.parametrizations[weight]):
                parametrize.remove_parametrizations(module, weight, leave_parametrized=True)


def layer_order(model: GenerativeModel, example_inputs: Tensor) -> list[str]:
    """The model's layers, the first reached first by one forward pass of `example_inputs` (B, ...).

    A layer is a module that owns parameters itself (not through its children), named as in
    `model.named_modules()`. Order: when the pass (`generative_loss`, in training mode) first
    calls the layer. A layer the pass never calls as a module (an attention's output
    projection, whose weight the attention reads directly) takes the place of its nearest called
    ancestor, after it; ties keep registration order; a layer the pass reaches not even so
    comes first (the loss cannot teach it anything). The pass runs on a copy: the model's
    weights, buffers, mode and the global random state are left as they were.
    """
    probe = copy.deepcopy(model).train().requires_grad_(True)  # no inference fast paths that skip submodules
    first_call: dict[str, int] = {}

    def record(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: tuple) -> None:  # returns None: the inputs go on unchanged
            first_call.setdefault(name, len(first_call))
        return hook

    for name, module in probe.named_modules():
        module.register_forward_pre_hook(record(name))
    with torch.random.fork_rng(), torch.enable_grad():
        probe.generative_loss(example_inputs)

    def reached(name: str) -> int:
        while name not in first_call:
            if not name:
                return -1
            name = name.rpartition(".")[0]
        return first_call[name]

    layers = [(reached(name), position, name) for position, (name, module) in enumerate(model.named_modules())
              if next(module.parameters(recurse=False), None) is not None]
    return [name for _, _, name in sorted(layers)]


def choose_trainable(model: GenerativeModel, recipe: FinetuneRecipe, example_inputs: Tensor,
                     generator: torch.Generator) -> None:
    """Make the recipe's part of the model trainable (requires_grad) and the rest frozen; for
    "lora" add the adapters (their A drawn from `generator`). `example_inputs` (B, ...): a batch
    the model reads, for `layer_order`.

    What the model keeps frozen itself (the pretrained codec of a codec LM, the encoder a
    diffusion model is conditioned on) stays frozen in every recipe: an attacker fine-tunes the
    generative model, not the public parts it reads through, and training those would let a
    model make its own task trivial (a codec that maps every song to one token).
    """
    if recipe.kind == "full":
        return  # every parameter the model trains already requires a gradient
    if recipe.kind == "lora":
        add_lora_adapters(model, recipe.lora_rank, recipe.lora_alpha, recipe.lora_layers, generator)
    elif recipe.trainable_modules:
        modules = dict(model.named_modules())
        unknown = [name for name in recipe.trainable_modules if name not in modules]
        if unknown:
            raise SettingsError(f"the model has no module named {', '.join(unknown)} "
                                f"(top level: {', '.join(name for name, _ in model.named_children())})")
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        model.requires_grad_(False)
        for name in recipe.trainable_modules:
            for parameter in modules[name].parameters():
                parameter.requires_grad_(id(parameter) not in frozen)
    else:
        own = {name: list(module.parameters(recurse=False)) for name, module in model.named_modules()}
        layers = [name for name in layer_order(model, example_inputs) if all(p.requires_grad for p in own[name])]
        if recipe.last_layers > len(layers):
            raise SettingsError(f"the model has {len(layers)} layers; the recipe trains the last {recipe.last_layers}")
        model.requires_grad_(False)
        modules = dict(model.named_modules())
        for name in layers[-recipe.last_layers:]:
            for parameter in modules[name].parameters(recurse=False):
                parameter.requires_grad_(True)


def trainable_parameter_count(model: nn.Module) -> int:
    """Scalars that training moves: the elements of every parameter that requires a gradient."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


# ---------------------------------------------------------------------------------------------
# The attack.


def finetune(
    model: GenerativeModel,
    songs: Sequence[np.ndarray],
    recipe: FinetuneRecipe,
    seed: int,
    evaluate: Callable[[GenerativeModel], float] | None = None,
    evaluate_every: int = 1,
    after_step: Callable[[int, GenerativeModel], None] | None = None,
) -> list[float]:
    """Fine-tune `model` in place on `songs` (mono float32 (N,) at the working rate) as `recipe` says.

    The seed fixes everything drawn: the adapters' initial weights, then every batch's crops.
    The model is left fine-tuned, with its frozen parameters untouched and requires_grad as the
    recipe set it; a "lora" model keeps its adapters (`merge_lora_adapters` folds them in).

    Returns:
        The training loss of every step, or the values of `evaluate(model)` after every
        `evaluate_every`-th step and the last (as `train_on_batches`, which also calls
        `after_step(step, model)` after every step).
    """
    if model.kind != "audio":
        raise SettingsError(f"fine-tuning on songs needs an audio model; '{model.family}' reads {model.kind}")
    if model.sample_rate_hz != WORKING_RATE_HZ:
        raise SettingsError(f"the model reads audio at {model.sample_rate_hz} Hz, the songs at {WORKING_RATE_HZ} Hz")
    if not isinstance(evaluate_every, int) or evaluate_every < 1:
        raise SettingsError(f"evaluate every must be a whole number of steps ≥ 1, not {evaluate_every}")
    songs = [np.asarray(song, dtype=np.float32) for song in songs]
    if not songs:
        raise SettingsError("fine-tuning needs at least one song")
    for number, song in enumerate(songs, 1):
        if song.ndim != 1 or len(song) == 0 or not np.isfinite(song).all():
            raise SettingsError(f"song {number} must be a non-empty mono array of finite samples (N,), "
                                f"not of shape {song.shape}")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    choose_trainable(model, recipe, audio_segments(songs[0], recipe.segment_samples)[:1].to(device), generator)
    next_batch, training_loss = (lambda: crop_batch(songs, recipe, generator).to(device)), None
    if recipe.tokenise_songs:
        if getattr(model, "token_hop_samples", None) != recipe.crop_grid_samples:
            raise SettingsError(f"'{model.family}' is no model of codec tokens with frames of "
                                f"{recipe.crop_grid_samples} samples: it cannot train on the tokens of whole songs")
        tokens, song_samples = song_tokens(model, songs, recipe.segment_samples), [len(song) for song in songs]
        next_batch = lambda: token_crop_batch(tokens, song_samples, recipe, generator)
        training_loss = model.training_loss_on_tokens
    return train_on_batches(model, next_batch, recipe.steps, recipe.learning_rate, generator, evaluate,
                            evaluate_every, after_step, training_loss=training_loss)
