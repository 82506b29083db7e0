"""The black-box bags: randomly initialised surrogates of varied architecture and size (§4.2).

Every variant is a named config. For audio the bag mixes three backbones (transformer, GRU,
dilated convolutions) at several widths and depths, over log-mel front ends of different
resolution (mel bands, FFT size), so that the noise cannot fit one architecture's or one
spectrogram's quirks; three front ends (48 bands over 25 ms, 64 over 32 ms, 80 over 64 ms)
are each heard by every backbone, and sampled models that share a front end share its
computation (`optim.objectives.generative_losses`). For MIDI the bag is the paper's: ten
MuseGAN variants of different latent sizes, widths and depths.
"""

from __future__ import annotations

from dataclasses import replace

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import NextFrameConfig
from harmonycloak.models.frontend import FrontendConfig
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.models.musegan import TINY_PHRASE, MuseGanConfig, PhraseFormat, max_discriminator_layers
from harmonycloak.models.registry import build_from_config


def _next_frame(family: str, width: int, layers: int, n_mels: int, n_fft: int, heads: int = 1,
                kernel_size: int = 3) -> NextFrameConfig:
    return NextFrameConfig(family=family, width=width, layers=layers, heads=heads, kernel_size=kernel_size,
                           frontend=FrontendConfig(n_mels=n_mels, n_fft=n_fft))


# Ten audio variants, no two alike, in the order a bag of fewer takes them.
AUDIO_BAG: dict[str, NextFrameConfig] = {
    "transformer-32x1-mel48": _next_frame("ar-transformer", 32, 1, 48, 400, heads=2),
    "transformer-64x2-mel64": _next_frame("ar-transformer", 64, 2, 64, 512, heads=4),
    "transformer-48x3-mel80": _next_frame("ar-transformer", 48, 3, 80, 1024, heads=4),
    "transformer-96x1-mel64": _next_frame("ar-transformer", 96, 1, 64, 512, heads=4),
    "gru-32x1-mel64": _next_frame("ar-gru", 32, 1, 64, 512),
    "gru-64x1-mel48": _next_frame("ar-gru", 64, 1, 48, 400),
    "gru-48x2-mel80": _next_frame("ar-gru", 48, 2, 80, 1024),
    "tcn-32x4k3-mel64": _next_frame("ar-tcn", 32, 4, 64, 512),
    "tcn-64x5k2-mel48": _next_frame("ar-tcn", 64, 5, 48, 400, kernel_size=2),
    "tcn-48x3k5-mel80": _next_frame("ar-tcn", 48, 3, 80, 1024, kernel_size=5),
}


def audio_bag_configs(size: int = 10, tiny: bool = False, exclude_families: tuple[str, ...] = ()) -> list[NextFrameConfig]:
    """Configs of the first `size` variants; `tiny` shrinks widths and mel bands for tests.

    `exclude_families` leaves those backbones out before the first `size` are taken (a
    black-box test: the attacker's architecture is not in the bag).
    """
    variants = [config for config in AUDIO_BAG.values() if config.family not in exclude_families]
    if not 1 <= size <= len(variants):
        raise SettingsError(f"the surrogate bag holds 1 to {len(variants)} models, not {size}")
    if not tiny:
        return variants[:size]
    return [replace(config, width=max(8, config.width // 4), heads=min(config.heads, 2),
                    frontend=replace(config.frontend, n_mels=max(12, config.frontend.n_mels // 4)))
            for config in variants[:size]]


def build_audio_bag(size: int = 10, seed: int = 0, tiny: bool = False,
                    exclude_families: tuple[str, ...] = ()) -> list[GenerativeModel]:
    """Randomly initialised surrogates, one per variant; model i is seeded with seed + i."""
    return [build_from_config(config.family, config, seed + index)
            for index, config in enumerate(audio_bag_configs(size, tiny, exclude_families))]


def _musegan(latent: int, temporal: int, generator: int, private: int, generator_layers: int, discriminator: int,
             private_discriminator: int, discriminator_layers: int, kernel_steps: int) -> MuseGanConfig:
    return MuseGanConfig(latent_dim=latent, temporal_width=temporal, generator_width=generator, private_width=private,
                         generator_layers=generator_layers, discriminator_width=discriminator,
                         private_discriminator_width=private_discriminator, discriminator_layers=discriminator_layers,
                         kernel_steps=kernel_steps)


# Ten MuseGAN variants (the paper's bag size); the first is the default preset (722,629 parameters).
MUSEGAN_BAG: dict[str, MuseGanConfig] = {
    "musegan-default": _musegan(32, 64, 104, 32, 0, 128, 16, 3, 3),
    "musegan-narrow": _musegan(16, 32, 64, 16, 0, 64, 8, 2, 3),
    "musegan-deep-generator": _musegan(24, 48, 48, 24, 1, 96, 16, 3, 5),
    "musegan-deep-discriminator": _musegan(32, 32, 128, 16, 0, 48, 8, 4, 3),
    "musegan-wide-latent": _musegan(48, 64, 64, 48, 2, 160, 24, 2, 3),
    "musegan-small-latent": _musegan(16, 64, 80, 32, 1, 112, 12, 3, 3),
    "musegan-large-latent": _musegan(64, 96, 112, 24, 0, 80, 16, 4, 5),
    "musegan-wide-discriminator": _musegan(32, 48, 56, 40, 0, 192, 32, 2, 7),
    "musegan-wide-generator": _musegan(24, 32, 120, 32, 1, 64, 16, 3, 3),
    "musegan-long-kernels": _musegan(40, 80, 72, 16, 0, 144, 8, 3, 5),
}
# Phrases the black-box MuseGAN bag reads: (steps per 4/4 bar, bars per phrase); the tiny bag's are short.
MUSEGAN_BAG_PHRASE = {"default": (48, 4), "tiny": (16, 2)}


def musegan_bag_phrase(tracks: int, tiny: bool = False, steps_per_bar: int | None = None) -> PhraseFormat:
    """The phrase format of the black-box MuseGAN bag for `tracks` tracks (84 pitches from C1);
    `steps_per_bar` widens the bar slot for bars longer than 4/4."""
    nominal, bars = MUSEGAN_BAG_PHRASE["tiny" if tiny else "default"]
    return PhraseFormat(tracks=tracks, bars=bars, steps_per_bar=steps_per_bar or nominal, lowest_pitch=24, octaves=7)


def musegan_bag_configs(size: int = 10, tiny: bool = False, phrase: PhraseFormat | None = None) -> list[MuseGanConfig]:
    """Configs of the first `size` variants, all reading `phrase`.

    `tiny` divides every width by 8 (at least 2) for tests; `phrase` defaults to the tiny
    or default phrase format. Discriminator depth is capped where the phrase is too short.
    """
    if not 1 <= size <= len(MUSEGAN_BAG):
        raise SettingsError(f"the MuseGAN bag holds 1 to {len(MUSEGAN_BAG)} models, not {size}")
    phrase = phrase or (TINY_PHRASE if tiny else PhraseFormat())
    configs = []
    for config in list(MUSEGAN_BAG.values())[:size]:
        config = replace(config, phrase=phrase)
        if tiny:
            config = replace(
                config, latent_dim=max(2, config.latent_dim // 8), temporal_width=max(2, config.temporal_width // 8),
                generator_width=max(2, config.generator_width // 8), private_width=max(2, config.private_width // 8),
                discriminator_width=max(2, config.discriminator_width // 8),
                private_discriminator_width=max(2, config.private_discriminator_width // 8),
            )
        configs.append(replace(config, discriminator_layers=min(config.discriminator_layers,
                                                                max_discriminator_layers(phrase))))
    return configs


def build_musegan_bag(size: int = 10, seed: int = 0, tiny: bool = False,
                      phrase: PhraseFormat | None = None) -> list[GenerativeModel]:
    """Randomly initialised MuseGAN surrogates, one per variant; model i is seeded with seed + i."""
    return [build_from_config("musegan", config, seed + index)
            for index, config in enumerate(musegan_bag_configs(size, tiny, phrase))]
