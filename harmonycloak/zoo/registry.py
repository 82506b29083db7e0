"""The zoo: pretrained base models by name, a plain dict of how each one is trained.

Every entry says everything that decides its weights: the model family and config, the data
recipe (`harmonycloak.zoo.data`), the steps, batch, learning rate and seed, and the zoo
entries whose weights it builds on (the codec under the codec LM, the contrastive encoder
under the diffusion model). ``harmonycloak zoo train NAME`` reproduces one exactly (one
thread; see `harmonycloak.zoo.train`).

Entries whose name starts with ``tiny-`` train in seconds on synthetic tones: they exist for
the tests and are never committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import NextFrameConfig
from harmonycloak.models.frontend import FrontendConfig
from harmonycloak.models.registry import family_spec, with_log_floor
from harmonycloak.settings import SEGMENT_S


@dataclass(frozen=True)
class ZooEntry:
    name: str  # the weight file's name: NAME.pt
    family: str  # a family of harmonycloak.models.registry.MODEL_FAMILIES
    config: Any  # that family's config
    data: str  # data recipe: "audio", "midi" or "synthetic-audio"
    steps: int  # optimiser steps
    batch: int  # examples per step
    learning_rate: float  # peak AdamW learning rate (linear warm-up, cosine decay to 10 %)
    seed: int = 0  # initial weights and the order of the data
    segment_s: float = SEGMENT_S  # audio crop length, seconds
    depends_on: tuple[str, ...] = ()  # zoo entries whose weights the model builds on
    description: str = ""  # one line for people
    warmup_steps: int = 100  # steps of linear learning-rate warm-up
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    max_heldout: int = 128  # held-out examples the card's loss is measured on
    select_every_steps: int = 0  # a GAN's weights kept from the closest of these checkpoints (0: the last)
    extra: dict = field(default_factory=dict)  # family-specific training settings


def _zoo_preset(family: str, **kwargs) -> ZooEntry:
    """An entry of `family` at its registry `zoo` preset, trained on the zoo's audio."""
    return ZooEntry(family, family, family_spec(family).presets["zoo"], "audio", **kwargs)


def _reading_100_db(entry: ZooEntry) -> ZooEntry:
    """`entry` trained on log-mel frames that read 100 dB of level (a floor of 10^-10 of a full-scale band's
    power, as public generators' mels clamp the magnitude at 10^-5) where the zoo's read 50 dB, named -100db."""
    return replace(entry, name=f"{entry.name}-100db", config=with_log_floor(entry.config, 1e-10),
                   description=f"{entry.description}, reading 100 dB of level (the others: 50 dB)")


def _retrained_codec_pair(codec: ZooEntry, codec_lm: ZooEntry, seed: int, ordinal: str,
                          origin: str) -> list[ZooEntry]:
    """`codec` and `codec_lm` trained again from `seed` (another initialisation and data order), named
    with the suffix -(seed + 1): a codec whose codes share nothing with the first's and a codec LM over
    them, for an attacker who brings their own codec. `ordinal` and `origin` word the descriptions."""
    again = replace(codec, name=f"codec-{seed + 1}", seed=seed,
                    description=f"a {ordinal} codec of the codec's design, from {origin} seed and data order")
    return [again, replace(codec_lm, name=f"codec-lm-{seed + 1}", seed=seed, depends_on=(again.name,),
                           description=f"a {ordinal} codec LM, over the {ordinal} codec's tokens")]


def _zoo() -> dict[str, ZooEntry]:
    # Steps are sized for about 15-20 minutes each on one thread of this project's 2-core machine.
    codec = _zoo_preset("codec", steps=3000, batch=8, learning_rate=1e-3, segment_s=1.0,
                        description="convolutional autoencoder with 4 x 256-code residual VQ, 50 frames/s")
    codec_lm = _zoo_preset("codec-lm", steps=600, batch=8, learning_rate=5e-4, depends_on=("codec",),
                           description="transformer over the codec's tokens, summed codebook embeddings, a head per codebook")
    transformer = _zoo_preset("ar-transformer", steps=1000, batch=8, learning_rate=1e-3,
                              description="causal transformer predicting the next 10 ms log-mel frame")
    entries = [
        _zoo_preset("contrastive", steps=400, batch=24, learning_rate=5e-4,
                    description="contrastive audio encoder (two crops of a clip are a positive pair, InfoNCE)"),
        codec,
        _zoo_preset("mel-diffusion", steps=500, batch=16, learning_rate=5e-4, depends_on=("contrastive",),
                    description="v-prediction diffusion over log-mel frames, 1-D U-Net, conditioned on the contrastive embedding"),
        codec_lm,
        *_retrained_codec_pair(codec, codec_lm, 1, "second", "another"),
        *_retrained_codec_pair(codec, codec_lm, 2, "third", "a third"),
        transformer,
        _reading_100_db(transformer),
        _zoo_preset("ar-gru", steps=1000, batch=8, learning_rate=1e-3,
                    description="GRU predicting the next 10 ms log-mel frame"),
        _zoo_preset("ar-tcn", steps=800, batch=8, learning_rate=1e-3,
                    description="dilated causal convolutions predicting the next 10 ms log-mel frame"),
        ZooEntry("musegan", "musegan", family_spec("musegan").presets["zoo"], "midi", steps=3000, batch=8,
                 learning_rate=2e-4, segment_s=0.0, select_every_steps=300,
                 description="MuseGAN hybrid GAN over 4-track, 4-bar piano-roll phrases (48 steps per bar)"),
        ZooEntry("symphonynet", "symphonynet", family_spec("symphonynet").presets["zoo"], "midi", steps=500, batch=8,
                 learning_rate=5e-4, segment_s=0.0,
                 description="causal transformer over 4-track piano-roll steps (next-step NLL), 4-bar segments"),
        ZooEntry("tiny-ar-gru", "ar-gru",
                 NextFrameConfig(family="ar-gru", width=16, layers=1, frontend=FrontendConfig(n_mels=16)),
                 "synthetic-audio", steps=4, batch=4, learning_rate=1e-2, segment_s=0.32, warmup_steps=1,
                 description="test entry: a tiny GRU on synthetic tones"),
    ]
    return {entry.name: entry for entry in entries}


def zoo_entries() -> dict[str, ZooEntry]:
    """Name → entry, in training order (dependencies first)."""
    return _zoo()


def zoo_entry(name: str) -> ZooEntry:
    entries = zoo_entries()
    if name not in entries:
        raise SettingsError(f"unknown zoo model {name!r} (known: {', '.join(entries)})")
    return entries[name]
