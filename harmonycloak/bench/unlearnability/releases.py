"""What the artist releases instead of the clean songs: one version per protection method.

  none                 the songs as they are
  positive-white-10db  white Gaussian noise at 10 dB SNR: plainly audible, the positive control
                       (a benchmark that cannot see it cannot see anything)
  positive-white-0db   white Gaussian noise as loud as the music (0 dB SNR): the louder positive
                       control, for T1, where models learn the songs through noise at 10 dB
  positive-other-music other music of the corpus's draw, never trained on, released in place of
                       the songs (each cut to its song's length): what never learning the artist
                       looks like, the control the style measures must see
  positive-linf-em     error-minimising noise in an L∞ ball of the same budget (10 dB SNR per
                       block), no psychoacoustic bound, optimised white-box against the zoo model
                       of the attacker's family: the strongest noise of that power we make
  random-dominant      the paper's cloak (one tone per window at the dominant note) with random
                       levels and phases, not optimised: the bar the dominant cloaks must clear
  random-masked        the masked cloak (every STFT bin under the masking threshold) with
                       random coefficients: the bar the masked cloaks must clear
  dominant-whitebox,   the cloaks optimised by the one min-min loop against the zoo model of the
  masked-whitebox      attacker's family: the defender knows the public base model
  dominant-blackbox,   the cloaks optimised against a bag of randomly initialised surrogates with
  masked-blackbox      no model of the attacker's family group (`heldout_bag`): the defender does
                       not know the model
  default              what `protect` does to audio when asked nothing (`settings.DEFAULT_PROTECTION`
                       at the product's bound rule and effort, the suite's strength): it reads the
                       zoo's next-frame models and its codec LM whatever the attacker, so it knows a
                       next-frame or codec-LM attacker's base model and is held out for the others
  random-default       the default's cloak with random coefficients under the same bounds: its bar

Candidate objectives (`optim.objectives`; not in a suite's methods unless it names them):

  cue-10db                 the future cue in an L∞ ball at 10 dB SNR: audible, it asks whether the
                           mechanism works at all (its bar: positive-white-10db, random noise of that power)
  masked-cue               the future cue inside the masked cloak's bounds (bar: random-masked)
  masked-embedding-shift   the zoo's contrastive encoder reads the songs as a decoy style; held out
                           for next-frame and codec attackers, known to contrastive and diffusion
                           attackers (it is their base model, or their conditioner)
  masked-gradient-matching training steps on the songs turn toward a decoy, against the zoo's
                           pretrained models of other groups than the attacker's (`heldout_zoo`)
  masked-reverse-gradient  training steps on the songs do not lower the clean songs' loss (or
                           raise it), against the same held-out zoo models
  masked-gradient-matching-whitebox, masked-reverse-gradient-whitebox
                           the same against the zoo model of the attacker's family: the defender
                           knows the public base model
  masked-reverse-gradient-trajectory, masked-reverse-gradient-trajectory-whitebox
                           the reverse gradient against those models (held out, or the attacker's
                           base model) and against copies of them fine-tuned on the clean songs for
                           `TRAJECTORY_STAGES_STEPS` steps (`optim.trajectory`): the weights the
                           attacker passes through, not only those it starts from
  masked-minmin-zoo        the paper's min-min against those pretrained models, fine-tuned on the
                           protected songs between noise updates (the alternating version)
  masked-maxloss-whitebox  error-maximising noise against the zoo model of the attacker's family,
                           fine-tuned on the protected songs between noise updates: the defender
                           knows the public base model
  masked-maxloss-zoo       the same against the pretrained models of other groups (`heldout_zoo`)
  gain-cue                 the future cue written as smooth gains on the music (±0.5/1/2 dB by
                           strength, `cloak.gain`) instead of added noise (bar: random-gain, random gains
                           of the same bound)
  gain-maxloss-whitebox    error-maximising gains against the zoo model of the attacker's family
  gain-default             the default's objective, models and effort written as gains instead of
                           masked noise: a log-mel attacker reads a ±1 dB level change in full,
                           where noise under the music moves its log levels little (bar: random-gain)
  masked-gain-default      the same written as the default's masked noise and gains (±2 dB at medium)
                           at once (`cloak.stacked`), held to the band check (bar: random-masked-gain-default,
                           both parts' random coefficients under the same bounds, held the same)
  default-next-frame       the default reading the zoo's next-frame models alone (`protect
                           --zoo-models ar-transformer ar-gru ar-tcn`; the default until it read the
                           codec LM too): held out for a codec-LM attacker (bar: random-default)
  default-two-codecs       the default reading the zoo's second codec LM too (`codec-lm-2`, over a codec
                           trained apart): whether reading two codecs reaches a third (bar: random-default)
  default-100db            the default reading the transformer that reads 100 dB of level (`ar-transformer-100db`)
                           in place of the zoo's 50 dB one: noise under the masking threshold lies mostly under
                           a 50 dB floor, where the model it is optimised on cannot see it (bar: random-default)

A release that depends on the attacker's family is made once per family; the others once per
seed. All songs of a release are optimised together as one lane (an album is one training set).

Shapes: songs are (N,) float32 at the working rate, all of one length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from harmonycloak.bench.unlearnability.baselines import gaussian_noise
from harmonycloak.errors import SettingsError
from harmonycloak.settings import WORKING_RATE_HZ

POSITIVE_POWER_RATIO = 0.1  # 10 dB SNR: the positive controls' noise power, a tenth of the music's
LOUD_POSITIVE_POWER_RATIO = 1.0  # 0 dB SNR: positive-white-0db's noise, as strong as the music
CLOAKS = ("dominant", "masked")
PAPER_METHODS = ("none", "positive-white-10db", "positive-linf-em", "random-dominant", "random-masked",
                 "dominant-whitebox", "dominant-blackbox", "masked-whitebox", "masked-blackbox")
OBJECTIVE_METHODS = {  # method → (cloak, objective)
    "cue-10db": ("linf-10db", "future-cue"),
    "masked-cue": ("masked", "future-cue"),
    "masked-embedding-shift": ("masked", "embedding-shift"),
    "masked-gradient-matching": ("masked", "gradient-matching"),
    "masked-gradient-matching-whitebox": ("masked", "gradient-matching"),
    "masked-reverse-gradient": ("masked", "reverse-gradient"),
    "masked-reverse-gradient-whitebox": ("masked", "reverse-gradient"),
    "masked-reverse-gradient-trajectory": ("masked", "reverse-gradient"),
    "masked-reverse-gradient-trajectory-whitebox": ("masked", "reverse-gradient"),
    "masked-minmin-zoo": ("masked", "minmin"),
    "masked-maxloss-whitebox": ("masked", "maxloss"),
    "masked-maxloss-zoo": ("masked", "maxloss"),
    "gain-cue": ("gain", "future-cue"),
    "gain-maxloss-whitebox": ("gain", "maxloss"),
}
# Objectives whose black-box methods read the zoo's pretrained models of other groups than the
# attacker's (the embedding shift reads the product's contrastive encoder; the cue reads no model).
HELDOUT_ZOO_OBJECTIVES = ("minmin", "maxloss", "gradient-matching", "reverse-gradient")
OTHER_MUSIC = "positive-other-music"
PRODUCT_DEFAULT = "default"
# The product default's settings, in its own cloak or another: method → cloak (None: the default's)
DEFAULT_CLOAK_VARIANTS = {PRODUCT_DEFAULT: None, "gain-default": "gain", "masked-gain-default": "masked-gain"}
# The product default reading other zoo models (`protect --zoo-models`): method → the models it reads
DEFAULT_MODEL_VARIANTS = {"default-next-frame": ("ar-transformer", "ar-gru", "ar-tcn"),
                          "default-two-codecs": ("ar-transformer", "ar-gru", "ar-tcn", "codec-lm", "codec-lm-2"),
                          "default-100db": ("ar-transformer-100db", "ar-gru", "ar-tcn", "codec-lm")}
# The zoo models the held-out objective methods read, less the attacker's group (`heldout_zoo`):
# the next-frame models, as every committed row read them (the product's reverse gradient reads
# the codec LM too since that became the default; `default` measures it).
HELDOUT_ZOO_SOURCES = ("ar-transformer", "ar-gru", "ar-tcn")
METHODS = (PAPER_METHODS + ("positive-white-0db", OTHER_MUSIC, "random-gain")
           + tuple(DEFAULT_CLOAK_VARIANTS) + tuple(DEFAULT_MODEL_VARIANTS)
           + (f"random-{PRODUCT_DEFAULT}", "random-masked-gain-default")
           + tuple(OBJECTIVE_METHODS))
RANDOM_CONTROL = {PRODUCT_DEFAULT: f"random-{PRODUCT_DEFAULT}", "default-next-frame": f"random-{PRODUCT_DEFAULT}",
                  "default-two-codecs": f"random-{PRODUCT_DEFAULT}", "default-100db": f"random-{PRODUCT_DEFAULT}",
                  "dominant-whitebox": "random-dominant", "dominant-blackbox": "random-dominant",
                  "masked-whitebox": "random-masked", "masked-blackbox": "random-masked",
                  "cue-10db": "positive-white-10db", "masked-cue": "random-masked",
                  "masked-embedding-shift": "random-masked", "masked-gradient-matching": "random-masked",
                  "masked-gradient-matching-whitebox": "random-masked", "masked-reverse-gradient": "random-masked",
                  "masked-reverse-gradient-whitebox": "random-masked",
                  "masked-reverse-gradient-trajectory": "random-masked",
                  "masked-reverse-gradient-trajectory-whitebox": "random-masked",
                  "masked-minmin-zoo": "random-masked", "masked-maxloss-whitebox": "random-masked",
                  "masked-maxloss-zoo": "random-masked", "gain-cue": "random-gain",
                  "gain-maxloss-whitebox": "random-gain", "gain-default": "random-gain",
                  "masked-gain-default": "random-masked-gain-default"}
ATTACK_SEPARATOR = "+"
TRAJECTORY = "-trajectory"  # in a method's name: its models are also read along a fine-tune on the clean songs
TRAJECTORY_STAGES_STEPS = (30, 100)  # the fine-tune's stages read (the standard suite's attacker takes 100 steps)


@dataclass(frozen=True)
class ReleaseSpec:
    """How the optimised methods run (a suite fixes it)."""

    strength: str = "medium"  # the cloak's headroom under its bound (settings.headroom_db)
    bound_rule: str = "bin"  # the masked cloak's bound rule (settings.BOUND_RULES), random-masked's too
    window_ms: float = 10.0  # dominant-tone window
    pgd_steps: int = 20  # inner PGD steps per round (paper: 20)
    max_rounds: int = 3  # min-min rounds
    bag_size: int = 6  # black-box surrogates (none of the attacker's group)
    models_per_round: int = 4  # Q
    bag_preset: str = "default"  # the surrogates' sizes: the product's ("default") or "tiny" (tests)
    device: str = "auto"  # "auto": CUDA when present
    eot: tuple[str, ...] = ()  # purifications the optimised releases are made to survive (`optim.eot`)


@dataclass
class Release:
    """The released versions of the songs, and what making them cost and did."""

    songs: list[np.ndarray]
    elapsed_s: float
    summary: dict = field(default_factory=dict)


def split_method(method: str) -> tuple[str, str | None]:
    """'dominant-blackbox+mp3-128k' → ('dominant-blackbox', 'mp3-128k'); no attack → (method, None)."""
    name, _, attack = method.partition(ATTACK_SEPARATOR)
    return name, attack or None


def check_method(method: str) -> None:
    from harmonycloak.purification import check_attack

    name, attack = split_method(method)
    if name not in METHODS:
        raise SettingsError(f"unknown protection method '{name}' (known: {', '.join(METHODS)})")
    if attack is not None:
        check_attack(attack)


def with_controls(methods: tuple[str, ...], controls=None) -> tuple[str, ...]:
    """`methods` with what reading them needs: "none" first, then each method's controls
    before it; in order, each once. `controls(name)` names a method's controls (None where it
    has none; default: its random control)."""
    controls = controls or (lambda name: (RANDOM_CONTROL.get(name),))
    ordered: list[str] = ["none"]
    for method in methods:
        name, _ = split_method(method)
        for needed in (*controls(name), name, method):
            if needed is not None and needed not in ordered:
                ordered.append(needed)
    return tuple(ordered)


def release_key(method: str, family: str) -> str:
    """What a release depends on: the attacker's family (white-box, the L∞ control), its group
    (black-box bags; a MIDI family is a group of its own), or nothing ("any")."""
    from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP

    if method.endswith("-whitebox") or method == "positive-linf-em":
        return family
    if method.endswith("-blackbox") or _reads_heldout_zoo(method):
        return FAMILY_GROUP.get(family, family)
    return "any"


def release(method: str, songs: list[np.ndarray], family: str, seed: int, spec: ReleaseSpec,
            other_music: list[np.ndarray] | None = None) -> Release:
    """The released versions of `songs` under `method` (no attack), deterministic for a seed;
    `other_music` (as many songs as `songs`, never trained on) is what `positive-other-music` releases."""
    check_method(method)
    started = time.perf_counter()
    summary: dict = {}
    if method == "none":
        released = [song.copy() for song in songs]
    elif method == OTHER_MUSIC:
        if other_music is None or len(other_music) < len(songs):
            raise SettingsError(f"{OTHER_MUSIC} needs {len(songs)} songs of other music never trained on")
        released = [np.resize(other, song.shape).astype(np.float32) for other, song in zip(other_music, songs)]
    elif method == "positive-white-10db":
        released = gaussian_noise(songs, POSITIVE_POWER_RATIO, seed)
    elif method == "positive-white-0db":
        released = gaussian_noise(songs, LOUD_POSITIVE_POWER_RATIO, seed)
    elif method.startswith("random-"):
        released = _add(songs, random_cloak_noise(method.removeprefix("random-"), songs, seed, spec))
    else:
        noises, summary = _optimised_noise(method, songs, family, seed, spec)
        released = _add(songs, noises)
    return Release(released, time.perf_counter() - started, summary)


def attacked(songs: list[np.ndarray], attack: str, seed: int) -> list[np.ndarray]:
    """Every song after the attacker's purification `attack` (`harmonycloak.purification`)."""
    from harmonycloak.purification import apply_attack

    return [apply_attack(attack, song, WORKING_RATE_HZ, seed=seed + index) for index, song in enumerate(songs)]


def random_cloak_noise(cloak: str, songs: list[np.ndarray], seed: int, spec: ReleaseSpec) -> list[np.ndarray]:
    """A cloak's noise with random parameters (`randomise`), not optimised, for the songs as one lane;
    `cloak` "default" (or a variant of it) is the product default's cloak (`default_settings`)."""
    from harmonycloak.flows.audio.protect import build_cloak, written_noise

    generator = torch.Generator().manual_seed(seed)
    lane = np.concatenate(songs)[None]
    settings = (default_settings(seed, spec, DEFAULT_CLOAK_VARIANTS[cloak]) if cloak in DEFAULT_CLOAK_VARIANTS
                else _settings(cloak, seed, spec))
    cloak_model = build_cloak(torch.from_numpy(lane), settings, generator)
    with torch.no_grad():
        cloak_model.randomise(generator)
    noise = written_noise(cloak_model, lane, WORKING_RATE_HZ, settings.band_check_db)
    return _split_lane(noise[0], songs)  # written as the optimised are


def heldout_bag(family: str, spec: ReleaseSpec, seed: int) -> list:
    """Randomly initialised surrogates of no family of `family`'s group: the product's bag of
    next-frame models for the other groups; for a next-frame attacker, codec LMs and diffusion
    models in turn. Model i is seeded with seed + i."""
    from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP
    from harmonycloak.models.bag import audio_bag_configs
    from harmonycloak.models.registry import build_from_config, build_model

    tiny = spec.bag_preset == "tiny"
    if FAMILY_GROUP[family] != "next-frame":
        return [build_from_config(config.family, config, seed + index)
                for index, config in enumerate(audio_bag_configs(spec.bag_size, tiny))]
    others = ("codec-lm", "mel-diffusion")
    return [build_model(others[index % len(others)], "tiny" if tiny else "default", seed=seed + index)
            for index in range(spec.bag_size)]


def heldout_zoo(family: str) -> list:
    """The zoo's pretrained models a held-out objective method reads in the benchmark:
    `HELDOUT_ZOO_SOURCES` less those of the attacker's group; when that leaves none, a codec LM
    and a diffusion model."""
    from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP
    from harmonycloak.zoo import load_zoo_model

    names = [name for name in HELDOUT_ZOO_SOURCES if FAMILY_GROUP[name] != FAMILY_GROUP[family]]
    return [load_zoo_model(name) for name in names or ("codec-lm", "mel-diffusion")]


def _optimised_noise(method: str, songs: list[np.ndarray], family: str, seed: int,
                     spec: ReleaseSpec) -> tuple[list[np.ndarray], dict]:
    from harmonycloak.cloak.norm_ball import NormBallCloak, NormBallSettings
    from harmonycloak.flows.audio.protect import cloak_tracks
    from harmonycloak.optim.trajectory import along_fine_tune
    from harmonycloak.zoo import load_zoo_model

    lane = np.concatenate(songs)[None]  # (1, songs × N): the album as one training stream
    ball = NormBallSettings(norm="linf", power_ratio=POSITIVE_POWER_RATIO)

    def audible_ball(lanes, rate, generator):
        return NormBallCloak(lanes, rate, ball, generator)

    if method in DEFAULT_CLOAK_VARIANTS:
        outcome = cloak_tracks([lane], WORKING_RATE_HZ, default_settings(seed, spec, DEFAULT_CLOAK_VARIANTS[method]))
    elif method in DEFAULT_MODEL_VARIANTS:
        settings = replace(default_settings(seed, spec), zoo_models=DEFAULT_MODEL_VARIANTS[method])
        outcome = cloak_tracks([lane], WORKING_RATE_HZ, settings)
    elif method == "positive-linf-em":
        outcome = cloak_tracks([lane], WORKING_RATE_HZ, _settings("dominant", seed, spec, load_zoo_model(family)),
                               cloak_factory=audible_ball)
    elif method in OBJECTIVE_METHODS:
        cloak, objective = OBJECTIVE_METHODS[method]
        known = load_zoo_model(family) if method.endswith("-whitebox") else None
        settings = _settings("masked" if cloak == "linf-10db" else cloak, seed, spec, known, objective=objective)
        surrogates = heldout_zoo(family) if _reads_heldout_zoo(method) else None
        if TRAJECTORY in method:  # every model and its stages, all read at every step
            base = surrogates or [known]
            surrogates = base + along_fine_tune(base, songs, TRAJECTORY_STAGES_STEPS, seed)
            settings = replace(settings, mode="blackbox", model=None, bag_size=len(surrogates),
                               models_per_round=len(surrogates))
        outcome = cloak_tracks([lane], WORKING_RATE_HZ, settings, surrogates=surrogates,
                               cloak_factory=audible_ball if cloak == "linf-10db" else None)
    else:
        cloak, mode = method.split("-")
        if mode == "whitebox":
            outcome = cloak_tracks([lane], WORKING_RATE_HZ, _settings(cloak, seed, spec, load_zoo_model(family)))
        else:
            outcome = cloak_tracks([lane], WORKING_RATE_HZ, _settings(cloak, seed, spec),
                                   surrogates=heldout_bag(family, spec, seed))
    return _split_lane(outcome.noises[0][0], songs), outcome.summary


def _reads_heldout_zoo(method: str) -> bool:
    """An objective method that optimises against the zoo's models of other groups (`heldout_zoo`)."""
    return (method in OBJECTIVE_METHODS and not method.endswith("-whitebox")
            and OBJECTIVE_METHODS[method][1] in HELDOUT_ZOO_OBJECTIVES)


def _settings(cloak: str, seed: int, spec: ReleaseSpec, model=None, objective: str = "minmin"):
    """The product's settings for a benchmark cloak run: white-box against `model` (in memory), else black-box.
    The masked cloak's runs, optimised or random (`random-masked`), all take `spec.bound_rule`: one set of bounds."""
    from harmonycloak.settings import ProtectionSettings

    bound_rule = spec.bound_rule if cloak == "masked" else ProtectionSettings.bound_rule
    return ProtectionSettings(mode="blackbox" if model is None else "whitebox", model=model, strength=spec.strength,
                              cloak=cloak, bound_rule=bound_rule, objective=objective, window_ms=spec.window_ms,
                              seed=seed, device=spec.device,
                              bag_size=max(spec.bag_size, 2), models_per_round=spec.models_per_round,
                              model_preset=spec.bag_preset, pgd_steps=spec.pgd_steps, max_rounds=spec.max_rounds,
                              eot=spec.eot)


def default_settings(seed: int, spec: ReleaseSpec, cloak: str | None = None):
    """What `protect` takes for audio when asked nothing (or only for `cloak`), at the suite's
    strength, seed and device."""
    from harmonycloak.settings import ProtectionSettings

    return ProtectionSettings(cloak=cloak, strength=spec.strength, seed=seed, device=spec.device).resolved("audio")


def _split_lane(noise: np.ndarray, songs: list[np.ndarray]) -> list[np.ndarray]:
    """The noise of the one lane (songs joined end to end), cut back into one per song."""
    bounds = np.cumsum([0] + [len(song) for song in songs])
    return [noise[bounds[i] : bounds[i + 1]] for i in range(len(songs))]


def _add(songs: list[np.ndarray], noises: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(s + n, -1.0, 1.0).astype(np.float32) for s, n in zip(songs, noises)]
