"""harmonycloak: make music unlearnable for generative AI.

The public API is three functions; everything else is an implementation detail.

    >>> import harmonycloak
    >>> audio = harmonycloak.load("song.flac")
    >>> result = harmonycloak.protect("song.flac", "song.protected.flac")
    >>> report = harmonycloak.verify("song.flac", "song.protected.flac")
"""

from __future__ import annotations

from harmonycloak.errors import HarmonyCloakError

__all__ = ["HarmonyCloakError", "load", "protect", "verify"]


def load(path):
    """Read an audio file into an `Audio` (see `harmonycloak.io.audio.read_audio`)."""
    from harmonycloak.io.audio import read_audio

    return read_audio(path)


def protect(*args, **kwargs):
    """Protect a file; see `harmonycloak.protect_file.protect_file`."""
    from harmonycloak.pipeline import protect_file

    return protect_file(*args, **kwargs)


def verify(*args, **kwargs):
    """Measure how audible and how protected a protected file is; see `harmonycloak.verification`."""
    from harmonycloak.verification import verify_files

    return verify_files(*args, **kwargs)
