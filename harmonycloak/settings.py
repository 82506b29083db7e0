"""What a user can set when protecting music, with the paper's defaults and allowed ranges."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harmonycloak.errors import SettingsError
from harmonycloak.safeguards import check_count, check_seconds, check_seed

# Strength = how close the noise may come to what masks it, in dB under the bound:
# (dominant-tone cloak: under the music's level at the dominant frequency,
#  masked cloak: under the global masking threshold).
STRENGTH_HEADROOM_DB: dict[str, tuple[float, float]] = {
    "low": (20.0, 6.0),
    "medium": (14.0, 3.0),
    "high": (8.0, 0.0),
}
CLOAKS = ("dominant", "masked")
MODES = ("blackbox", "whitebox")
PAPER_ALPHA: dict[str, float] = {"gan": 0.22, "transformer": 0.30, "audio": 0.30}  # paper §5.1


@dataclass(frozen=True)
class ProtectionSettings:
    mode: str = "blackbox"  # "blackbox" (bag of surrogates, the default) or "whitebox" (a named model)
    model_checkpoint: Path | None = None  # white-box: the attacker's model (`harmonycloak train` makes one)
    strength: str = "medium"  # "low", "medium" or "high": see STRENGTH_HEADROOM_DB
    cloak: str = "dominant"  # "dominant" (the paper's one tone per window) or "masked" (every bin under the masking threshold)
    window_ms: float = 10.0  # dominant-tone window, 5–100 ms (paper §5.2.5)
    seed: int = 0  # same seed, same input → byte-identical output
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    preview_s: float | None = None  # protect only this many seconds from the middle of the song
    stems: bool = False  # a multichannel file whose channels are separate stems (tracks)
    working_rate_hz: int = 16_000  # the models hear the music at this rate, mono (paper §5.1)
    segment_s: float = 2.56  # segment length the optimiser batches over
    bag_size: int = 10  # black-box surrogates (paper: 10)
    models_per_round: int = 7  # black-box Q (paper: 7)
    model_preset: str = "default"  # surrogate sizes: "default", or "tiny" for tests
    pgd_steps: int = 20  # inner iterations per round (paper: 20)
    max_rounds: int = 3  # min-min rounds at most
    # Regulariser weight; None takes the paper's value for the model family (§5.1): 0.22 for the
    # GAN (MuseGAN, and the MIDI black-box bag of MuseGANs), 0.30 for transformers and audio models.
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SettingsError(f"mode must be one of {', '.join(MODES)}, not '{self.mode}'")
        if self.mode == "whitebox" and self.model_checkpoint is None:
            raise SettingsError("white-box mode needs the model to protect against (--model CHECKPOINT)")
        if self.strength not in STRENGTH_HEADROOM_DB:
            raise SettingsError(f"strength must be one of {', '.join(STRENGTH_HEADROOM_DB)}, not '{self.strength}'")
        if self.cloak not in CLOAKS:
            raise SettingsError(f"cloak must be one of {', '.join(CLOAKS)}, not '{self.cloak}'")
        if not 5.0 <= self.window_ms <= 100.0:
            raise SettingsError(f"the window must be 5 to 100 ms long, not {self.window_ms} ms")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SettingsError(f"device must be auto, cpu or cuda, not '{self.device}'")
        if self.preview_s is not None:
            check_seconds("the preview length", self.preview_s)
        check_seed(self.seed)
        check_count("the number of rounds (--rounds)", self.max_rounds)

    @property
    def headroom_db(self) -> float:
        dominant, masked = STRENGTH_HEADROOM_DB[self.strength]
        return dominant if self.cloak == "dominant" else masked
