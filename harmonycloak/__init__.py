"""harmonycloak: make music unlearnable for generative AI.

The public API: read a file, protect it, verify the result, train a model to protect against.

    >>> import harmonycloak
    >>> audio = harmonycloak.load("song.flac")
    >>> result = harmonycloak.protect("song.flac", "song.protected.flac")
    >>> result = harmonycloak.protect("song.flac", settings=harmonycloak.ProtectionSettings(strength="high"))
    >>> report = harmonycloak.verify("song.flac", "song.protected.flac")

MIDI files (.mid, .midi) go through the same functions: `load` gives a `Score`, `protect`
adds the MIDI cloak's quiet notes, `verify` renders both files with FluidSynth.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.settings import ProtectionSettings

if TYPE_CHECKING:
    from harmonycloak.flows.results import ProgressCallback, ProtectionResult
    from harmonycloak.music import Audio, Score

__all__ = ["HarmonyCloakError", "ProtectionSettings", "__version__", "load", "protect", "train", "verify"]

try:
    __version__ = version("harmonycloak")  # the installed distribution's, from pyproject.toml
except PackageNotFoundError:  # the source tree on sys.path without an installation
    __version__ = "0+unknown"

# The flows import torch and the models; they are imported on first use, so that
# `import harmonycloak` (and the command line's --help) stays fast.


def load(path: str | Path) -> "Audio | Score":
    """Read an audio file into an `Audio` (see `harmonycloak.io.audio.read_audio`), or a MIDI file
    into a `Score` (see `harmonycloak.io.midi.read_midi`)."""
    from harmonycloak.flows.dispatch import file_kind

    if file_kind(path) == "midi":
        from harmonycloak.io.midi import read_midi

        return read_midi(path)
    from harmonycloak.io.audio import read_audio

    return read_audio(path)


def protect(input_path: str | Path, output_path: str | Path | None = None,
            settings: ProtectionSettings = ProtectionSettings(), *, overwrite: bool = False,
            write_report: bool = True, picture: bool = True,
            progress: "ProgressCallback | None" = None) -> "ProtectionResult":
    """Protect one file (audio or MIDI) and write the protected version.

    Args:
        input_path: the song.
        output_path: the file to write, or a folder; default: song.protected.EXT beside it.
        settings: mode, strength, cloak, seed, ... (`ProtectionSettings`).
        overwrite: allow replacing an existing output (never the input unless this is set).
        write_report: also write <output>.report.json;
        picture: and <output>.report.png (with `write_report`).
        progress: called with (units done, units in total) as the optimisation runs.
    """
    from harmonycloak.flows.dispatch import flows_for

    return flows_for(input_path).protect(input_path, output_path, settings, overwrite=overwrite,
                                         write_report=write_report, picture=picture, progress=progress)


def verify(original_path: str | Path, protected_path: str | Path, *, protection_check: bool = True,
           visqol: bool = True, seed: int = 0, training_steps: int = 60, model_preset: str = "default") -> dict:
    """How audible and how protected `protected_path` is, measured against `original_path`.

    Args:
        protection_check: train twin fresh models, one on each file, and compare what they learned.
        visqol: score audio with ViSQOL (the slowest measure; no effect on MIDI).
        seed, training_steps, model_preset: the twin models' seed, steps and size.
    """
    from harmonycloak.flows.dispatch import flows_for
    from harmonycloak.safeguards import check_count, check_seed

    if protection_check:
        check_seed(seed)
        check_count("the number of training steps (--steps)", training_steps)
    return flows_for(original_path).verify(original_path, protected_path, protection_check=protection_check,
                                           visqol=visqol, seed=seed, training_steps=training_steps,
                                           model_preset=model_preset)


def train(paths: list[str | Path], output: str | Path, family: str | None = None, preset: str = "default",
          steps: int = 300, seed: int = 0) -> tuple[Path, list[float]]:
    """Train a generative model on audio or MIDI files (a white-box target); returns (checkpoint, loss curve).

    `family` defaults to "ar-transformer" for audio and "musegan" for MIDI.
    """
    from harmonycloak.flows.dispatch import flows_for_all

    paths = [Path(p) for p in paths]
    flows = flows_for_all(paths)
    return flows.train(paths, Path(output), family or flows.default_family, preset, steps, seed)
