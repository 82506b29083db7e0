"""The black-box bag: randomly initialised surrogates of varied architecture and size (§4.2).

The paper uses 10 MuseGAN variants for MIDI. For audio the bag mixes three backbones
(transformer, GRU, dilated convolutions) at several widths and depths, over log-mel front
ends of different resolution (mel bands, FFT size), so that the noise cannot fit one
architecture's or one spectrogram's quirks.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from harmonycloak.errors import SettingsError
from harmonycloak.models.audio_ar import NextFrameConfig
from harmonycloak.models.frontend import FrontendConfig
from harmonycloak.models.registry import build_from_config

# (family, width, layers, heads, kernel_size, n_mels, n_fft): ten variants, no two alike. Three
# front ends (48 bands over 25 ms, 64 over 32 ms, 80 over 64 ms), each heard by every backbone:
# sampled models that share a front end share its computation (optimiser.generative_losses).
AUDIO_BAG_VARIANTS: tuple[tuple[str, int, int, int, int, int, int], ...] = (
    ("ar-transformer", 32, 1, 2, 3, 48, 400),
    ("ar-transformer", 64, 2, 4, 3, 64, 512),
    ("ar-transformer", 48, 3, 4, 3, 80, 1024),
    ("ar-transformer", 96, 1, 4, 3, 64, 512),
    ("ar-gru", 32, 1, 1, 3, 64, 512),
    ("ar-gru", 64, 1, 1, 3, 48, 400),
    ("ar-gru", 48, 2, 1, 3, 80, 1024),
    ("ar-tcn", 32, 4, 1, 3, 64, 512),
    ("ar-tcn", 64, 5, 1, 2, 48, 400),
    ("ar-tcn", 48, 3, 1, 5, 80, 1024),
)


def audio_bag_configs(size: int = 10, tiny: bool = False, exclude_families: tuple[str, ...] = ()) -> list[NextFrameConfig]:
    """Configs of the first `size` variants; `tiny` shrinks widths and mel bands for tests.

    `exclude_families` leaves those backbones out before the first `size` are taken (a
    black-box test: the attacker's architecture is not in the bag).
    """
    variants = [variant for variant in AUDIO_BAG_VARIANTS if variant[0] not in exclude_families]
    if not 1 <= size <= len(variants):
        raise SettingsError(f"the surrogate bag holds 1 to {len(variants)} models, not {size}")
    configs = []
    for family, width, layers, heads, kernel_size, n_mels, n_fft in variants[:size]:
        config = NextFrameConfig(
            family=family, width=width, layers=layers, heads=heads, kernel_size=kernel_size,
            frontend=FrontendConfig(n_mels=n_mels, n_fft=n_fft),
        )
        if tiny:
            config = replace(config, width=max(8, width // 4), heads=min(heads, 2),
                             frontend=replace(config.frontend, n_mels=max(12, n_mels // 4)))
        configs.append(config)
    return configs


def build_audio_bag(size: int = 10, seed: int = 0, tiny: bool = False,
                    exclude_families: tuple[str, ...] = ()) -> list[nn.Module]:
    """Randomly initialised surrogates, one per variant; model i is seeded with seed + i."""
    return [build_from_config(config.family, config, seed + index)
            for index, config in enumerate(audio_bag_configs(size, tiny, exclude_families))]
