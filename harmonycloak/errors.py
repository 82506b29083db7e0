"""The one root exception of harmonycloak.

Every error a user can cause (a bad file, a bad setting, a bad checkpoint) is raised as a
`HarmonyCloakError` or a subclass, with a message a musician understands. The command line
prints ``str(error)`` on one line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

from pathlib import Path


class HarmonyCloakError(Exception):
    """Root of every user-facing error.

    Args:
        message: what went wrong, in plain words ("the file is empty").
        path: the file it concerns, if any; it is named first in ``str(error)``.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class AudioFileError(HarmonyCloakError):
    """An audio file cannot be read or written: unreadable, corrupt, unsupported, or invalid."""


class MidiFileError(HarmonyCloakError):
    """A MIDI file cannot be read or written, or holds nothing to protect."""


class SettingsError(HarmonyCloakError):
    """A setting is out of its allowed range or two settings contradict each other."""


class ModelError(HarmonyCloakError):
    """A model checkpoint cannot be loaded or does not match a known architecture."""


class OutputExistsError(HarmonyCloakError):
    """The output file exists already and overwriting was not allowed: the work is left undone
    (the command line reports the file as skipped, so that a second run over a folder redoes
    nothing)."""


class MissingDependencyError(HarmonyCloakError):
    """A package that only some commands need is not installed; the message names the extra
    to install (`harmonycloak.optional`)."""
