"""harmonycloak: make music unlearnable for generative AI.

The public API is three functions; everything else is an implementation detail.

    >>> import harmonycloak
    >>> audio = harmonycloak.load("song.flac")
    >>> result = harmonycloak.protect("song.flac", "song.protected.flac")
    >>> report = harmonycloak.verify("song.flac", "song.protected.flac")

MIDI files (.mid, .midi) go through the same three functions: `load` gives a `Score`,
`protect` adds the MIDI cloak's quiet notes, `verify` renders both files with FluidSynth.
"""

from __future__ import annotations

from harmonycloak.errors import HarmonyCloakError

__all__ = ["HarmonyCloakError", "load", "protect", "verify"]


def load(path):
    """Read an audio file into an `Audio` (see `harmonycloak.io.audio.read_audio`), or a MIDI file
    into a `Score` (see `harmonycloak.io.midi.read_midi`)."""
    from pathlib import Path

    from harmonycloak.io.midi import MIDI_SUFFIXES

    if Path(path).suffix.lower() in MIDI_SUFFIXES:
        from harmonycloak.io.midi import read_midi

        return read_midi(path)
    from harmonycloak.io.audio import read_audio

    return read_audio(path)


def protect(*args, **kwargs):
    """Protect a file (audio or MIDI); see `harmonycloak.pipeline.protect_file`."""
    from harmonycloak.pipeline import protect_file

    return protect_file(*args, **kwargs)


def verify(*args, **kwargs):
    """Measure how audible and how protected a protected file is; see `harmonycloak.verification`."""
    from harmonycloak.verification import verify_files

    return verify_files(*args, **kwargs)
