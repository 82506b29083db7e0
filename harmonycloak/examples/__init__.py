"""The example song and MIDI file that ship with harmonycloak (licences in README.md here).

In a clone of the repository, `examples/` at the top is a link to this folder, so the
README's `harmonycloak protect examples/elf-land.ogg` works there; an installed package finds
the files with `example_path`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLE_SONG = "elf-land.ogg"  # "Elf Land", The Battle for Wesnoth, GPL-2.0-or-later: 26.8 s, Ogg Vorbis 44.1 kHz stereo
EXAMPLE_MIDI = "bwv1.6.mid"  # a Bach chorale, four voices, public domain


def example_path(name: str = EXAMPLE_SONG) -> Path:
    """The path of an example file installed with the package."""
    return Path(str(files(__name__) / name))
