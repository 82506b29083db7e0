"""Every default of harmonycloak in one place, and what a user can set when protecting music.

The constants here are the one source of each default: the working rate the models hear,
the segment the optimiser batches over, the allowed window lengths, the calibration of
digital full scale, the strength headrooms, the paper's regulariser weights. Modules that
need one import it from here; the command line builds its choices and defaults from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonycloak.errors import SettingsError
from harmonycloak.safeguards import check_count, check_seconds, check_seed

if TYPE_CHECKING:
    import torch

WORKING_RATE_HZ = 16_000  # the models hear the music at this rate, mono (paper §5.1)
SEGMENT_S = 2.56  # the segment the optimiser batches over and the models train on
WINDOW_MS_RANGE = (5.0, 100.0)  # allowed noise windows (paper §5.2.5, Table 6)
DEFAULT_WINDOW_MS = 10.0  # the paper's noise window
FULL_SCALE_DB_SPL = 96.0  # calibration: a digital full-scale sine is 96 dB SPL (MPEG-1 model 1's convention)

# Audio cloaks: one tone per window (the paper), every bin under the mask, small smooth
# level-neutral gains on the music itself (`cloak.gain`), or the masked noise and the gains at once
# (`cloak.stacked`). The masked cloaks take a bound rule and are held to the band check.
CLOAKS = ("dominant", "masked", "gain", "masked-gain")
MASKED_CLOAKS = ("masked", "masked-gain")
GAIN_CLOAKS = ("gain", "masked-gain")
# How the masked cloak bounds each STFT bin (`cloak.masked`): "bin", at the bin's own masking
# threshold lowered by 10·log10(bins per Bark); "band", so that a whole 1-Bark band filled to its
# bounds stays under the band's lowest threshold (the rule the audibility check's band NMR reads);
# "band-pool", the same budget per band, shared freely by its bins (the optimiser places it).
BOUND_RULES = ("bin", "band", "band-pool")
# The band check's target for written noise (band NMR in dB, `cloak.band_check`): under the band
# rules at low and medium strength, a band of a frame that reads louder is turned down. High
# strength is past the band check by design (docs/audibility.md); the bin rule was never under it.
BAND_CHECK_LIMIT_DB = -3.0
MODES = ("blackbox", "whitebox")  # a bag of surrogates (the default), or the one model given
DEVICES = ("auto", "cpu", "cuda")  # "auto": CUDA when PyTorch sees a GPU
MODEL_PRESETS = ("default", "tiny")  # surrogate sizes: the product's, or seconds-fast ones for tests
STRENGTHS = ("low", "medium", "high")
# How a style-mimicry attacker fine-tunes (`optim.finetune`): every weight, only the layers
# nearest the output, or low-rank adapters beside frozen weights.
FINETUNE_KINDS = ("full", "last-layers", "lora")
REPORTS = ("json", "png", "none")  # beside each output: the JSON report; the JSON and its picture; nothing
BACKENDS = ("local", "ray")  # where a batch runs its files: processes on this machine, or a Ray cluster
# What the noise is optimised for (`optim.objectives`): the paper's error-minimising noise, a
# cue to the next frame, a decoy style for an encoder, a training step toward a decoy or one
# that does not lower the clean song's loss.
OBJECTIVES = ("minmin", "maxloss", "future-cue", "embedding-shift", "gradient-matching", "reverse-gradient")
MIDI_OBJECTIVES = ("minmin", "maxloss")  # those that read nothing of audio (the others need its frames or decoys)
# How `protect` protects a file when no cloak or objective is named, by the kind of file. Audio:
# the reverse gradient against the zoo's next-frame models and its codec LM (ZOO_SURROGATES),
# carried by the masked noise under its band-pool rule (`bound_rule`'s default) and level-neutral
# gains on the music at once ("masked-gain"), the sum held to the band check: the candidate
# measured to protect most while beating its random control on models it never read and passing
# every audibility check, and beating it where it knows the attacker's public base model
# (docs/objectives.md, eighth, eleventh, thirteenth and seventeenth rounds). MIDI: the paper's
# min-min in the dominant-note cloak, which beats its random control held out (docs/objectives.md,
# fourth round).
DEFAULT_PROTECTION: dict[str, dict[str, str]] = {
    "audio": {"cloak": "masked-gain", "objective": "reverse-gradient"},
    "midi": {"cloak": "dominant", "objective": "minmin"},
}
# The optimiser's effort when not given: (PGD steps per round, rounds at most). The paper's 20
# steps and 3 rounds, except for the reverse gradient: it trains no model between rounds (a
# round only walks the song again), and the benchmark measured it at 6 steps and one round, where
# 20 steps added 0.01–0.02 to its score; its default is the effort that was measured.
PAPER_EFFORT = (20, 3)
OBJECTIVE_EFFORT: dict[str, tuple[int, int]] = {"reverse-gradient": (6, 1)}
# Black-box surrogates: "random", the paper's bag of randomly initialised models (§4.2), or
# "zoo", the zoo's pretrained public models (a real attacker starts from public weights too).
# embedding-shift and the gradient alignments always read the zoo's; future-cue reads the music alone.
SURROGATE_KINDS = ("random", "zoo")
ZOO_SURROGATES: dict[str, tuple[str, ...]] = {
    "minmin": ("ar-transformer", "ar-gru", "ar-tcn"),
    "maxloss": ("ar-transformer", "ar-gru", "ar-tcn"),
    "embedding-shift": ("contrastive",),
    "gradient-matching": ("ar-transformer", "ar-gru", "ar-tcn"),
    "reverse-gradient": ("ar-transformer", "ar-gru", "ar-tcn", "codec-lm"),
}
# Strength = how close the noise may come to what masks it, in dB under the cloak's bound:
#   dominant: under the music's level at the dominant frequency (dB SPL);
#   masked:   under the global masking threshold (dB SPL);
#   midi:     an added note under the note that masks it (DLS dB, 40·log10 of the velocity ratio).
# The MIDI headrooms are larger than the audio ones because a synthesiser plays the added note
# with the same sample, in phase with its dominant note: the difference is a scaled copy of the
# note itself, which the per-bin masking model forgives too easily. Measured on a Bach chorale
# rendered by FluidSynth (FluidR3 GM) with every added note at the upper bound: 14 dB → SNR
# 14 dB, +1.0 LU, 46 % of critical bands above the masking threshold; 26 dB → SNR 26 dB,
# +0.23 LU, 1 %; 32 dB → SNR 32 dB, +0.12 LU, none.
_HEADROOM_DB: dict[str, dict[str, float]] = {
    "dominant": {"low": 20.0, "medium": 14.0, "high": 8.0},
    "masked": {"low": 6.0, "medium": 3.0, "high": 0.0},
    "midi": {"low": 38.0, "medium": 32.0, "high": 26.0},
}
# The gain cloaks change the music's level instead of adding noise: their strength is the largest
# gain, ± dB, at any frame and band. Alone (`gain`), about the smallest level step a listener
# notices on music. Beside the masked noise (`masked-gain`) the sum is held to the band check at
# low and medium strength, which turns down any band the gains would lift above its masking
# threshold: there ±2 dB passes every audibility check on six recordings and protects more than
# ±1 dB (docs/objectives.md, fourteenth round).
_MAX_GAIN_DB: dict[str, dict[str, float]] = {
    "gain": {"low": 0.5, "medium": 1.0, "high": 2.0},
    "masked-gain": {"low": 0.5, "medium": 2.0, "high": 2.0},
}
# Regulariser weight α of Eq. 5 (paper §5.1): 0.22 for the GAN, 0.30 for transformers and audio models.
PAPER_ALPHA: dict[str, float] = {"gan": 0.22, "transformer": 0.30, "audio": 0.30}


def headroom_db(cloak: str, strength: str) -> float:
    """dB the noise keeps under its bound for a cloak ("dominant", "masked" or "midi") at a strength."""
    if cloak not in _HEADROOM_DB:
        raise SettingsError(f"cloak must be one of {', '.join(_HEADROOM_DB)}, not '{cloak}'")
    if strength not in STRENGTHS:
        raise SettingsError(f"strength must be one of {', '.join(STRENGTHS)}, not '{strength}'")
    return _HEADROOM_DB[cloak][strength]


def max_gain_db(cloak: str, strength: str) -> float:
    """± dB a gain cloak ("gain" or "masked-gain") may change the music's level by at a strength."""
    if cloak not in _MAX_GAIN_DB:
        raise SettingsError(f"cloak must be one of {', '.join(_MAX_GAIN_DB)}, not '{cloak}'")
    if strength not in STRENGTHS:
        raise SettingsError(f"strength must be one of {', '.join(STRENGTHS)}, not '{strength}'")
    return _MAX_GAIN_DB[cloak][strength]


def check_window_ms(window_ms: float) -> float:
    """The window length if it is allowed (5–100 ms), else SettingsError."""
    low, high = WINDOW_MS_RANGE
    if not (isinstance(window_ms, (int, float)) and low <= window_ms <= high):  # NaN fails the comparison
        raise SettingsError(f"the window must be {low:g} to {high:g} ms long, not {window_ms} ms")
    return float(window_ms)


def resolve_device(name: str) -> "torch.device":
    """The torch device a setting names: "auto" is CUDA when PyTorch sees a GPU, else the CPU."""
    import torch  # here, not at import: reading settings (the command line's choices) needs no torch

    if name not in DEVICES:
        raise SettingsError(f"device must be one of {', '.join(DEVICES)}, not '{name}'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SettingsError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    return torch.device(name)


@dataclass(frozen=True)
class ProtectionSettings:
    mode: str = "blackbox"  # "blackbox" (bag of surrogates, the default) or "whitebox" (a named model)
    model_checkpoint: Path | None = None  # white-box: the attacker's model (`harmonycloak train` makes one)
    strength: str = "medium"  # "low", "medium" or "high": see `headroom_db`
    # "masked" (noise under the masking threshold), "dominant" (the paper's one tone per window), "gain"
    # or "masked-gain" (CLOAKS);
    # None: DEFAULT_PROTECTION of the file's kind (`resolved`)
    cloak: str | None = None
    # masked cloak: "band-pool" (a Bark band's noise summed under its lowest threshold, placed in any of its bins
    # by the optimiser), "band" (the same sum spread evenly over the band's bins) or "bin" (BOUND_RULES)
    bound_rule: str = "band-pool"
    objective: str | None = None  # what the noise is optimised for: one of OBJECTIVES; None: DEFAULT_PROTECTION's
    surrogates: str = "random"  # black-box min-min: "random" (the paper's bag) or "zoo" (pretrained, see ZOO_SURROGATES)
    # Black-box: the zoo's pretrained models an objective that reads the zoo reads (names of `harmonycloak zoo
    # list`), e.g. to add the public base model of a family one fears; None: ZOO_SURROGATES[objective].
    zoo_models: tuple[str, ...] | None = None
    window_ms: float = DEFAULT_WINDOW_MS  # dominant-tone window, 5–100 ms (paper §5.2.5)
    seed: int = 0  # same seed, same input → byte-identical output
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    preview_s: float | None = None  # protect only this many seconds from the middle of the song
    stems: bool = False  # a multichannel file whose channels are separate stems (tracks)
    working_rate_hz: int = WORKING_RATE_HZ  # the models hear the music at this rate, mono (paper §5.1)
    segment_s: float = SEGMENT_S  # segment length the optimiser batches over
    bag_size: int = 10  # black-box surrogates (paper: 10)
    models_per_round: int = 7  # black-box Q (paper: 7)
    model_preset: str = "default"  # surrogate sizes: "default", or "tiny" for tests
    pgd_steps: int | None = None  # inner iterations per round; None: the objective's (`resolved`)
    max_rounds: int | None = None  # optimisation rounds at most; None: the objective's (`resolved`)
    # Regulariser weight; None takes the paper's value for the model family (§5.1): 0.22 for the
    # GAN (MuseGAN, and the MIDI black-box bag of MuseGANs), 0.30 for transformers and audio models.
    alpha: float | None = None
    # Audio files of a batch optimised together, this many at a time (`flows.audio.protect.cloak_songs`):
    # for a GPU that one song's batches leave idle; a song's noise then depends on the songs beside it.
    songs_per_batch: int = 1
    # Purifications the noise is optimised to survive (`optim.eot`: each batch drawn through one of
    # them or none), names of `harmonycloak.purification.ATTACKS`, e.g. ("mp3-128k",); () for none.
    eot: tuple[str, ...] = ()
    # White-box: the model itself, in memory, instead of `model_checkpoint` (the benchmark's
    # attackers; a program that trained its own). Not part of equality or the report.
    model: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, not '{self.mode}'")
        if self.mode == "whitebox" and self.model_checkpoint is None and self.model is None:
            raise SettingsError("white-box mode needs the model to protect against (--model CHECKPOINT)")
        if self.strength not in STRENGTHS:
            raise SettingsError(f"strength must be one of {', '.join(STRENGTHS)}, not '{self.strength}'")
        if self.cloak is not None and self.cloak not in CLOAKS:
            raise SettingsError(f"cloak must be one of {', '.join(CLOAKS)}, not '{self.cloak}'")
        if self.bound_rule not in BOUND_RULES:
            raise SettingsError(f"bound rule must be one of {', '.join(BOUND_RULES)}, not '{self.bound_rule}'")
        if self.bound_rule != ProtectionSettings.bound_rule and self.cloak not in (None, *MASKED_CLOAKS):
            raise SettingsError(f"the bound rule '{self.bound_rule}' is the masked cloak's (--cloak masked), "
                                f"not the {self.cloak} cloak's")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise SettingsError(f"objective must be one of {', '.join(OBJECTIVES)}, not '{self.objective}'")
        if self.surrogates not in SURROGATE_KINDS:
            raise SettingsError(f"surrogates must be one of {', '.join(SURROGATE_KINDS)}, not '{self.surrogates}'")
        if self.zoo_models is not None:
            if (isinstance(self.zoo_models, str) or not self.zoo_models
                    or not all(isinstance(name, str) and name for name in self.zoo_models)):
                raise SettingsError(f"the zoo models must be a list of zoo model names, not {self.zoo_models!r}")
            if self.mode == "whitebox":
                raise SettingsError("white-box mode reads the one model it is given (--model), not zoo models")
        check_window_ms(self.window_ms)
        if self.device not in DEVICES:
            raise SettingsError(f"device must be one of {', '.join(DEVICES)}, not '{self.device}'")
        if self.preview_s is not None:
            check_seconds("the preview length", self.preview_s)
        check_seed(self.seed)
        if self.model_preset not in MODEL_PRESETS:
            raise SettingsError(f"model preset must be one of {', '.join(MODEL_PRESETS)}, not '{self.model_preset}'")
        if self.max_rounds is not None:
            check_count("the number of rounds (--rounds)", self.max_rounds)
        for name in ("bag_size", "models_per_round", "pgd_steps", "songs_per_batch"):
            if getattr(self, name) is not None:
                check_count(f"the {name.replace('_', ' ')}", getattr(self, name))
        if self.alpha is not None and not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise SettingsError(f"alpha must be a finite number ≥ 0, not {self.alpha}")
        if isinstance(self.eot, str) or not all(isinstance(name, str) for name in self.eot):
            raise SettingsError(f"eot must be a list of purification names, not {self.eot!r}")

    def resolved(self, kind: str) -> "ProtectionSettings":
        """These settings for a file of `kind` ("audio" or "midi"), with what was left open filled in:
        the kind's cloak and objective (DEFAULT_PROTECTION), and the objective's effort, the PGD steps
        per round and the rounds (OBJECTIVE_EFFORT, else the paper's PAPER_EFFORT)."""
        defaults = DEFAULT_PROTECTION[kind]
        objective = self.objective or defaults["objective"]
        steps, rounds = OBJECTIVE_EFFORT.get(objective, PAPER_EFFORT)
        return replace(self, cloak=self.cloak or defaults["cloak"], objective=objective,
                       pgd_steps=self.pgd_steps or steps, max_rounds=self.max_rounds or rounds)

    @property
    def headroom_db(self) -> float:
        """dB under its bound this setting's audio cloak keeps its noise (the audio default's when none is named)."""
        cloak = self.cloak or DEFAULT_PROTECTION["audio"]["cloak"]
        return headroom_db("masked" if cloak in MASKED_CLOAKS else cloak, self.strength)

    @property
    def band_check_db(self) -> float | None:
        """Band NMR in dB that written noise is held under (`cloak.band_check`), None where it is not."""
        if (self.cloak or DEFAULT_PROTECTION["audio"]["cloak"]) not in MASKED_CLOAKS or self.bound_rule == "bin":
            return None
        return BAND_CHECK_LIMIT_DB if self.strength != "high" else None

    def as_report(self) -> dict:
        """The settings as JSON-ready values (paths as text; an in-memory model by its class)."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "model"}
        values["model_checkpoint"] = None if self.model_checkpoint is None else str(self.model_checkpoint)
        if self.model is not None:
            values["model"] = f"in memory ({type(self.model).__name__})"
        return values
