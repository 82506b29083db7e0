"""The pieces of the music21 corpus that harmonycloak uses, as a registry (a plain dict).

The music21 package installs its corpus with it (``music21/corpus/``), so these pieces are on
every machine that has the package, offline. Each collection says which files it reads and
the fixed tracks its pieces are mapped to (see `harmonycloak.corpus.voices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harmonycloak.optional import import_optional


@dataclass(frozen=True)
class Collection:
    """A set of corpus files read the same way.

    Attributes:
        name: key in `COLLECTIONS` ("bach").
        description: what it is, for people.
        patterns: glob patterns relative to the music21 corpus folder.
        track_names: the tracks every piece is mapped to, highest voice first.
        voices: how parts become tracks: "satb" takes the parts named Soprano, Alto, Tenor
            and Bass and drops the rest (a file without exactly one of each is not a
            four-part chorale and is skipped); "range" groups all melodic parts by range.
    """

    name: str
    description: str
    patterns: tuple[str, ...]
    track_names: tuple[str, ...]
    voices: str


COLLECTIONS: dict[str, Collection] = {
    "bach": Collection(
        "bach",
        "J. S. Bach's four-part chorales (MusicXML); instrumental parts are dropped",
        ("bach/*.mxl", "bach/*.xml"),
        ("soprano", "alto", "tenor", "bass"),
        "satb",
    ),
    "palestrina": Collection(
        "palestrina",
        "Palestrina's masses, 3 to 6 voices (Humdrum **kern), grouped into four by range",
        ("palestrina/*.krn",),
        ("soprano", "alto", "tenor", "bass"),
        "range",
    ),
    "monteverdi": Collection(
        "monteverdi",
        "Monteverdi's madrigals, 5 or 6 voices (MusicXML), grouped into five by range",
        ("monteverdi/*.mxl",),
        ("canto", "quinto", "alto", "tenor", "basso"),
        "range",
    ),
    "essen": Collection(
        "essen",
        "The Essen folk song collection: about 8,500 German and other European melodies (ABC)",
        ("essenFolksong/*.abc",),
        ("melody",),
        "range",
    ),
}


def corpus_folder() -> Path:
    """The folder of the music21 corpus installed with the music21 package."""
    music21 = import_optional("music21", "the music21 corpus")

    return Path(music21.__file__).parent / "corpus"


def get_collection(name: str) -> Collection:
    """The collection called ``name``; raises `SettingsError` for an unknown name."""
    from harmonycloak.errors import SettingsError

    try:
        return COLLECTIONS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTIONS))
        raise SettingsError(f"unknown corpus collection {name!r}; choose one of {known}") from None


def list_sources(name: str) -> list[Path]:
    """The files of a collection, sorted by name (an ABC file holds many tunes)."""
    collection = get_collection(name)
    folder = corpus_folder()
    files = {path for pattern in collection.patterns for path in folder.glob(pattern)}
    return sorted(files, key=lambda path: path.relative_to(folder).as_posix())
