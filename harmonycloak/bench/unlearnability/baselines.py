"""What a defender can do to the protected songs: the cloak and the baselines it is compared to.

Every method maps the clean protected songs to the versions released instead (paper Table 10,
Fig. 6–7):

  none              no noise (the songs as they are)
  gaussian-ρ        white Gaussian noise whose power is ρ times the song's (ρ = 0.1, 0.2, 0.3)
  random-dominant   the paper's dominant-tone noise with random levels and phases, no
                    optimisation: the control that asks whether the optimisation matters
  em-l2, em-linf    error-minimising noise in an L2 / L∞ ball, no psychoacoustic bound
                    (`cloak.norm_ball`), black-box, the target's family not in the bag
  cloak-whitebox    the cloak (dominant tone, paper §4.1) optimised against the target's
                    architecture (a fresh model of it, trained inside the min-min loop)
  cloak-blackbox    the cloak optimised against a bag that leaves the target's family out
  masked-whitebox,  the project's second cloak (every STFT bin under the masking threshold,
  masked-blackbox   `cloak.masked`), white-box / black-box like the cloak
  random-masked     the masked cloak with random coefficients, no optimisation: its control

Each can be followed by an MP3 128 kbps round trip (`mp3_round_trip`). All optimised methods
go through `flows.audio.protect.cloak_tracks`, i.e. the one min-min optimiser; the protected songs are
optimised together as one long lane (the surrogates see them as one training set).

Shapes: songs are (N,) float32 at the benchmark's rate; all songs have one length.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harmonycloak.errors import SettingsError

GAUSSIAN_PREFIX = "gaussian-"
MP3_SUFFIX = "+mp3"
OPTIMISED_METHODS = ("em-l2", "em-linf", "cloak-whitebox", "cloak-blackbox", "masked-whitebox", "masked-blackbox")
RANDOM_CONTROLS = ("random-dominant", "random-masked")  # each cloak's bounds, unoptimised


@dataclass(frozen=True)
class CloakSpec:
    """How the optimised methods run (a suite fixes it)."""

    model_preset: str = "tiny"  # black-box surrogate sizes ("tiny" or "default"); white-box = the attacker's own
    strength: str = "medium"  # the cloak's headroom under its bound (settings.headroom_db)
    window_ms: float = 10.0  # dominant-tone window (Table 6 varies it)
    pgd_steps: int = 20  # inner PGD steps per round (paper: 20)
    max_rounds: int = 3  # min-min rounds
    bag_size: int = 6  # black-box surrogates, all of families other than the target's
    models_per_round: int = 5  # Q
    norm_ball_power_ratio: float = 0.05  # em-l2 / em-linf budget: noise power ÷ music power (≈ 13 dB SNR)
    device: str = "auto"  # "auto": CUDA when present


@dataclass
class Protected:
    """The released versions of the protected songs, and what making them cost."""

    songs: list[np.ndarray]
    elapsed_s: float
    summary: dict


def base_method(method: str) -> tuple[str, bool]:
    """'cloak-blackbox+mp3' → ('cloak-blackbox', True)."""
    if method.endswith(MP3_SUFFIX):
        return method[: -len(MP3_SUFFIX)], True
    return method, False


def depends_on_target(method: str) -> bool:
    """Whether the method's noise depends on the attacker's family (white-box, or a bag that excludes it)."""
    return base_method(method)[0] in OPTIMISED_METHODS


def check_method(method: str) -> None:
    name, _ = base_method(method)
    if name.startswith(GAUSSIAN_PREFIX):
        try:
            ratio = float(name[len(GAUSSIAN_PREFIX):])
        except ValueError:
            ratio = -1.0
        if not ratio > 0:
            raise SettingsError(f"'{method}': a Gaussian budget is a positive power ratio (gaussian-0.1)")
        return
    if name not in ("none",) + RANDOM_CONTROLS + OPTIMISED_METHODS:
        raise SettingsError(f"unknown protection method '{method}'")


def protect(method: str, songs: list[np.ndarray], sample_rate_hz: int, target_family: str, seed: int,
            spec: CloakSpec, attacker=None) -> Protected:
    """Release versions of `songs` under `method` (see the module docstring); deterministic for a seed.

    A '+mp3' method is the method's release after `mp3_round_trip`; callers that need both
    should protect once and round-trip the result (the optimisation is the expensive part).
    `attacker` (a `runs.TrainingSpec`) gives the white-box model its size: the attacker's own.
    """
    check_method(method)
    name, mp3 = base_method(method)
    started = time.perf_counter()
    summary: dict = {}
    if name == "none":
        released = [s.copy() for s in songs]
    elif name.startswith(GAUSSIAN_PREFIX):
        released = gaussian_noise(songs, float(name[len(GAUSSIAN_PREFIX):]), seed)
    elif name == "random-dominant":
        released = _add(songs, _random_dominant_noise(songs, sample_rate_hz, seed, spec))
    elif name == "random-masked":
        released = _add(songs, _random_masked_noise(songs, sample_rate_hz, seed, spec))
    else:
        noises, summary = _optimised_noise(name, songs, sample_rate_hz, target_family, seed, spec, attacker)
        released = _add(songs, noises)
    elapsed_s = time.perf_counter() - started  # the cost of protection; the MP3 trip is the attacker's
    if mp3:
        released = [mp3_round_trip(s, sample_rate_hz) for s in released]
    return Protected(released, elapsed_s, summary)


def gaussian_noise(songs: list[np.ndarray], power_ratio: float, seed: int) -> list[np.ndarray]:
    """Each song plus white Gaussian noise of power `power_ratio` × the song's mean power (clipped to [-1, 1])."""
    rng = np.random.default_rng(seed)
    out = []
    for song in songs:
        std = math.sqrt(power_ratio * float(np.mean(song.astype(np.float64) ** 2)))
        out.append(np.clip(song + rng.normal(0.0, std, song.shape), -1.0, 1.0).astype(np.float32))
    return out


def mp3_round_trip(samples: np.ndarray, sample_rate_hz: int, bitrate_bps: int = 128_000,
                   release_rate_hz: int = 44_100) -> np.ndarray:
    """(N,) → released as MP3 at `bitrate_bps` (LAME, at the usual 44.1 kHz) → decoded back to (N,).

    The song is resampled to the release rate first: MP3 at 16 kHz would be MPEG-2 layer III,
    not what a musician publishes.
    """
    from harmonycloak.io.audio import read_audio, write_audio
    from harmonycloak.music import Audio, AudioFormat
    from harmonycloak.resampling import to_working_rate

    released = to_working_rate(samples[None].astype(np.float64), sample_rate_hz, release_rate_hz)
    with tempfile.TemporaryDirectory(prefix="harmonycloak-mp3-") as folder:
        path = Path(folder) / "song.mp3"
        write_audio(Audio(np.clip(released, -1, 1).astype(np.float32), release_rate_hz), path,
                    format=AudioFormat("mp3", "mp3", bitrate_bps=bitrate_bps))
        decoded = read_audio(path)
    back = to_working_rate(decoded.samples.mean(axis=0).astype(np.float64), decoded.sample_rate_hz, sample_rate_hz)
    out = np.zeros_like(samples, dtype=np.float32)
    out[: min(len(out), len(back))] = back[: len(out)]
    return out


def cloak_settings(target_family: str, seed: int, spec: CloakSpec, mode: str, model: torch.nn.Module | None = None,
                   cloak: str = "dominant"):
    """ProtectionSettings for a benchmark cloak run (one place that maps a CloakSpec onto the product's settings);
    white-box runs pass the target model in memory."""
    from harmonycloak.settings import ProtectionSettings

    return ProtectionSettings(mode=mode, model=model, strength=spec.strength, cloak=cloak,
                              window_ms=spec.window_ms, seed=seed, device=spec.device,
                              bag_size=spec.bag_size, models_per_round=spec.models_per_round,
                              model_preset=spec.model_preset, pgd_steps=spec.pgd_steps, max_rounds=spec.max_rounds)


def excluded_bag(target_family: str, seed: int, spec: CloakSpec) -> list[torch.nn.Module]:
    """Black-box surrogates with no model of `target_family` (the attacker's architecture is unknown)."""
    from harmonycloak.models.bag import build_audio_bag

    return build_audio_bag(spec.bag_size, seed, tiny=spec.model_preset == "tiny", exclude_families=(target_family,))


def _optimised_noise(name: str, songs: list[np.ndarray], sample_rate_hz: int, target_family: str, seed: int,
                     spec: CloakSpec, attacker=None) -> tuple[list[np.ndarray], dict]:
    from harmonycloak.bench.unlearnability.runs import TrainingSpec, build_attacker
    from harmonycloak.cloak.norm_ball import NormBallCloak, NormBallSettings
    from harmonycloak.flows.audio.protect import cloak_tracks

    lane = np.concatenate(songs)[None]  # (1, songs × N): the protected set as one training stream
    cloak = "masked" if name.startswith("masked-") else "dominant"
    if name in ("cloak-whitebox", "masked-whitebox"):
        # The defender knows the architecture (and trains it inside the min-min loop); the
        # attacker's own run starts from other initial weights.
        model = build_attacker(target_family, attacker or TrainingSpec(preset=spec.model_preset), seed + 7919)
        outcome = cloak_tracks([lane], sample_rate_hz, cloak_settings(target_family, seed, spec, "whitebox", model,
                                                                      cloak))
    else:
        settings = cloak_settings(target_family, seed, spec, "blackbox", cloak=cloak)
        factory = None
        if name in ("em-l2", "em-linf"):
            ball = NormBallSettings(norm=name[3:], power_ratio=spec.norm_ball_power_ratio)

            def factory(lanes, rate, generator):
                return NormBallCloak(lanes, rate, ball, generator=generator)
        outcome = cloak_tracks([lane], sample_rate_hz, settings, surrogates=excluded_bag(target_family, seed, spec),
                               cloak_factory=factory)
    return _split_lane(outcome.noises[0][0], songs), outcome.summary


def _random_dominant_noise(songs: list[np.ndarray], sample_rate_hz: int, seed: int, spec: CloakSpec) -> list[np.ndarray]:
    """The dominant-tone cloak with level logits ~ N(0, 1) and uniform phase offsets: no optimisation."""
    from harmonycloak.cloak.dominant import DominantToneCloak, DominantToneSettings
    from harmonycloak.settings import headroom_db

    generator = torch.Generator().manual_seed(seed)
    lane = torch.from_numpy(np.concatenate(songs)[None])
    cloak = DominantToneCloak(lane, sample_rate_hz, DominantToneSettings(
        window_ms=spec.window_ms, headroom_db=headroom_db("dominant", spec.strength)))
    with torch.no_grad():
        cloak.level_logit.copy_(torch.randn(cloak.level_logit.shape, generator=generator))
        cloak.phase_offset.copy_(2 * math.pi * torch.rand(cloak.phase_offset.shape, generator=generator))
        noise = cloak.render(sample_rate_hz, lane.shape[-1])[0]
    return _split_lane(noise, songs)


def _random_masked_noise(songs: list[np.ndarray], sample_rate_hz: int, seed: int, spec: CloakSpec) -> list[np.ndarray]:
    """The masked cloak with coefficients ~ N(0, 1) (magnitudes ≈ 0.8 of each bin's bound, random phases)."""
    from harmonycloak.cloak.masked import MaskedSpectrumCloak, MaskedSpectrumSettings
    from harmonycloak.settings import headroom_db

    generator = torch.Generator().manual_seed(seed)
    lane = torch.from_numpy(np.concatenate(songs)[None])
    cloak = MaskedSpectrumCloak(lane, sample_rate_hz,
                                MaskedSpectrumSettings(headroom_db=headroom_db("masked", spec.strength)))
    with torch.no_grad():
        cloak.coefficients.copy_(torch.randn(cloak.coefficients.shape, generator=generator,
                                             dtype=cloak.coefficients.dtype))
        noise = cloak.render(sample_rate_hz, lane.shape[-1])[0]
    return _split_lane(noise, songs)


def _split_lane(noise: np.ndarray, songs: list[np.ndarray]) -> list[np.ndarray]:
    """The noise of the protected set's one lane (songs joined end to end), cut back into one per song."""
    length = songs[0].shape[0]
    return [noise[i * length : (i + 1) * length] for i in range(len(songs))]


def _add(songs: list[np.ndarray], noises: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(s + n, -1.0, 1.0).astype(np.float32) for s, n in zip(songs, noises)]
