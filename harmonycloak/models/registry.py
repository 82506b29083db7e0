"""Model families by name: a plain dict from family name to its builder, config and presets.

`tiny` presets train in seconds on a CPU and serve the tests; `default` presets are the
sizes the product uses. Models are built under a private random state so that a seed fixes
their initial weights without touching the global generator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import NextFrameConfig, NextFrameModel
from harmonycloak.models.codec import CodecConfig, CodecModel
from harmonycloak.models.codec_lm import CodecLanguageModel, CodecLMConfig
from harmonycloak.models.contrastive import ContrastiveConfig, ContrastiveEncoder
from harmonycloak.models.frontend import FrontendConfig
from harmonycloak.models.mel_diffusion import MelDiffusionConfig, MelDiffusionModel, config_at_floor
from harmonycloak.models.musegan import TINY_PHRASE, MuseGanConfig, MuseGanModel
from harmonycloak.models.symphonynet import SymphonyNetConfig, SymphonyNetModel


@dataclass(frozen=True)
class ModelSpec:
    """How to build one family: its builder, its config class, named presets, and what it reads."""

    builder: Callable[[Any], nn.Module]
    config_class: type
    presets: dict[str, Any]
    kind: str  # "audio" (waveforms) or "midi" (piano-roll phrases)


def _next_frame_presets(family: str) -> dict[str, NextFrameConfig]:
    return {
        "tiny": NextFrameConfig(family=family, width=16, layers=1, heads=2, frontend=FrontendConfig(n_mels=16)),
        "default": NextFrameConfig(family=family, width=64, layers=2, heads=4),
        # The zoo's pretrained size (harmonycloak.zoo.registry), 0.7-0.9M parameters.
        # The benchmark's attackers trained from scratch: small enough to memorise a corpus in minutes.
        "small": NextFrameConfig(family=family, width=64, layers=2, heads=4),
        "zoo": {"ar-transformer": NextFrameConfig(family=family, width=128, layers=4, heads=4),
                "ar-gru": NextFrameConfig(family=family, width=256, layers=2),
                "ar-tcn": NextFrameConfig(family=family, width=192, layers=8)}[family],
    }


# Audio families of the zoo: codec (RVQ autoencoder), codec-token LM, contrastive encoder and
# mel diffusion. `zoo` presets are the pretrained sizes; `default` is `zoo`.
_TINY_FRONTEND = FrontendConfig(n_mels=16)
_CODEC_ZOO = CodecConfig(channels=(8, 16, 32, 64, 128))
_CODEC_TINY = CodecConfig(channels=(4, 4, 8, 8, 8), latent_dim=8, codebooks=2, codebook_size=16)
_ENCODER_ZOO = ContrastiveConfig()
_ENCODER_TINY = ContrastiveConfig(width=16, layers=1, heads=2, embedding_dim=8, negatives=8, frontend=_TINY_FRONTEND)
_AUDIO_FAMILIES = {
    "codec": ModelSpec(CodecModel, CodecConfig, {"tiny": _CODEC_TINY, "zoo": _CODEC_ZOO, "default": _CODEC_ZOO}, "audio"),
    "codec-lm": ModelSpec(CodecLanguageModel, CodecLMConfig, {
        "tiny": CodecLMConfig(codec=_CODEC_TINY, width=16, layers=1, heads=2),
        "small": CodecLMConfig(codec=_CODEC_ZOO, width=64, layers=2),  # reads the zoo's codec
        "zoo": CodecLMConfig(codec=_CODEC_ZOO, width=192),
        "default": CodecLMConfig(codec=_CODEC_ZOO, width=192),
    }, "audio"),
    "contrastive": ModelSpec(ContrastiveEncoder, ContrastiveConfig,
                             {"tiny": _ENCODER_TINY, "small": ContrastiveConfig(width=48, layers=1),
                              "zoo": _ENCODER_ZOO, "default": _ENCODER_ZOO}, "audio"),
    "mel-diffusion": ModelSpec(MelDiffusionModel, MelDiffusionConfig, {
        "tiny": MelDiffusionConfig(conditioner=_ENCODER_TINY, channels=(8, 16), groups=4, diffusion_steps=50),
        "small": MelDiffusionConfig(conditioner=_ENCODER_ZOO, channels=(32, 48, 64)),  # conditioned on the zoo's encoder
        "zoo": MelDiffusionConfig(conditioner=_ENCODER_ZOO),
        "default": MelDiffusionConfig(conditioner=_ENCODER_ZOO),
    }, "audio"),
}


MODEL_FAMILIES: dict[str, ModelSpec] = {
    family: ModelSpec(NextFrameModel, NextFrameConfig, _next_frame_presets(family), "audio")
    for family in ("ar-transformer", "ar-gru", "ar-tcn")
} | _AUDIO_FAMILIES | {
    # MIDI families. MuseGAN default: 722,629 parameters (paper Table 2: 720k).
    "musegan": ModelSpec(MuseGanModel, MuseGanConfig, {
        "tiny": MuseGanConfig(phrase=TINY_PHRASE, latent_dim=4, temporal_width=8, generator_width=8, private_width=4,
                              discriminator_width=8, private_discriminator_width=4, discriminator_layers=2),
        "default": MuseGanConfig(),
        # The zoo's: its generator starts sparse (0.7 % of cells), as the music it learns is.
        "zoo": MuseGanConfig(initial_note_density=0.007),
    }, "midi"),
    # SymphonyNet default: 4 layers × 8 heads × width 256, about 3.6M parameters (paper: 12 × 16 × 512, 30M).
    "symphonynet": ModelSpec(SymphonyNetModel, SymphonyNetConfig, {
        "tiny": SymphonyNetConfig(tracks=2, steps_per_bar=8, max_bars=4, width=32, layers=1, heads=2),
        "default": SymphonyNetConfig(),
        # The zoo's pretrained size: 4 layers × 4 heads × width 192, about 2.1M parameters.
        "zoo": SymphonyNetConfig(width=192, heads=4),
    }, "midi"),
}


def family_spec(family: str) -> ModelSpec:
    if family not in MODEL_FAMILIES:
        known = ", ".join(sorted(MODEL_FAMILIES))
        raise SettingsError(f"unknown model family '{family}' (known: {known})")
    return MODEL_FAMILIES[family]


def build_model(family: str, preset: str = "default", seed: int = 0, **overrides: Any) -> nn.Module:
    """Build a freshly initialised model of `family` from a named preset, with field overrides."""
    return build_from_config(family, replace(preset_config(family, preset), **overrides), seed)


def preset_config(family: str, preset: str) -> Any:
    """The config of `family`'s named preset."""
    spec = family_spec(family)
    if preset not in spec.presets:
        raise SettingsError(f"model family '{family}' has no preset '{preset}' (presets: {', '.join(spec.presets)})")
    return spec.presets[preset]


def with_log_floor(config: Any, log_floor: float) -> Any:
    """`config` reading its log-mel frames at `log_floor` (a share of a full-scale sine's band power): its
    front end's floor, or for the diffusion model the floor its denoiser learns at (`config_at_floor`)."""
    if isinstance(config, MelDiffusionConfig):
        return config_at_floor(config, log_floor)
    if not hasattr(config, "frontend"):
        raise SettingsError(f"a '{config.family}' model reads no log-mel front end of its own (it reads a zoo "
                            f"model's), so it cannot be given a log-mel floor")
    return replace(config, frontend=replace(config.frontend, log_floor=log_floor))


def symbolic_model(family: str, preset: str = "default", seed: int = 0, tracks: int = 4) -> nn.Module:
    """A fresh MIDI model of `family` (a named preset) reading `tracks` tracks."""
    if family_spec(family).kind != "midi":
        raise SettingsError(f"'{family}' is not a MIDI model family")
    return build_from_config(family, preset_config(family, preset).with_tracks(tracks), seed)


def build_from_config(family: str, config: Any, seed: int = 0) -> nn.Module:
    """Build `family` from a config object; the seed alone decides the initial weights."""
    spec = family_spec(family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.builder(config)


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(config_class: type, values: dict[str, Any]) -> Any:
    """Rebuild a (possibly nested) config dataclass from `config_to_dict` output."""
    kwargs = {}
    for field in dataclasses.fields(config_class):
        if field.name not in values:
            continue
        value = values[field.name]
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = config_from_dict(type(default), value)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return config_class(**kwargs)
