"""One dispatch on the file's kind: a MIDI file (.mid, .midi) goes to the MIDI flows, anything else
to the audio flows, for protect, verify and train alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harmonycloak.errors import SettingsError
from harmonycloak.flows.audio.protect import protect_audio_file
from harmonycloak.flows.audio.train import train_audio_model
from harmonycloak.flows.audio.verify import format_audio_verification, verify_audio_files
from harmonycloak.flows.midi.protect import protect_midi_file
from harmonycloak.flows.midi.train import train_midi_model
from harmonycloak.flows.midi.verify import format_midi_verification, verify_midi_files
from harmonycloak.io.midi import MIDI_SUFFIXES


@dataclass(frozen=True)
class Flows:
    """The flows of one kind of music."""

    protect: Callable  # (input, output, settings, *, overwrite, write_report, picture, progress) → ProtectionResult
    verify: Callable  # (original, protected, *, protection_check, visqol, seed, training_steps, model_preset) → dict
    format_verification: Callable[[dict], str]
    train: Callable  # (paths, output, family, preset, steps, seed) → (checkpoint path, loss curve)
    default_family: str  # what `train` trains unless told otherwise


FLOWS: dict[str, Flows] = {
    "audio": Flows(protect_audio_file, verify_audio_files, format_audio_verification, train_audio_model,
                   "ar-transformer"),
    "midi": Flows(protect_midi_file, verify_midi_files, format_midi_verification, train_midi_model, "musegan"),
}


def file_kind(path: str | Path) -> str:
    """"midi" for a .mid/.midi file, else "audio" (the audio reader says what it cannot read)."""
    return "midi" if Path(path).suffix.lower() in MIDI_SUFFIXES else "audio"


def flows_for(path: str | Path) -> Flows:
    return FLOWS[file_kind(path)]


def flows_for_all(paths: list[Path]) -> Flows:
    """The flows of files that must all be of one kind (the files a model is trained on)."""
    kinds = {file_kind(path) for path in paths}
    if len(kinds) != 1:
        raise SettingsError("a model learns either audio or MIDI: give only audio files or only MIDI files")
    return FLOWS[kinds.pop()]


def format_verification(result: dict) -> str:
    """`verify`'s measurements as text, for either kind."""
    return FLOWS[result["kind"]].format_verification(result)
