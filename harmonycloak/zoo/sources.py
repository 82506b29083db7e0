"""Where the zoo's music comes from: a registry of sources, the files of each, and fixed splits.

Two kinds of source, each a plain entry of `SOURCES`:

* `RecordingSource`: a Debian package of recorded game music (Ogg Vorbis or MP3, some inside
  ``.pk3`` zip archives), cut into clips;
* `ScoreSource`: a collection of the music21 corpus, rendered to audio with FluidSynth and
  read as 4-track piano rolls for the MIDI models.

Reserved, never read for zoo training or tuning: all of Bach (the music21 ``bach`` and
``cpebach`` folders) and all of Debian's ``planetblupi-music-ogg``: the benchmark's
style-mimicry artists. `RESERVED` names them and `check_not_reserved` refuses them. Every
other Debian music package is kept for independent checks and is not listed here.

Splits, fixed by the files' names alone (no seed, no file order, no machine):

* a source with more files than ``max_files`` uses the ``max_files`` whose
  ``sha256("zoo-select:" + name)`` is smallest;
* of the files used, the ``max(1, round(0.1 × files))`` whose ``sha256("zoo-split:" + name)``
  is smallest are held out (``"heldout"``), the rest are ``"train"``. A held-out file is
  never trained on; every clip of a file is in its file's split.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harmonycloak.corpus.collections import Collection, corpus_folder
from harmonycloak.errors import SettingsError

HELDOUT_FRACTION = 0.1  # share of each source's files held out for evaluation
RESERVED = {
    "music21": ("bach", "cpebach"),  # corpus folders: the benchmark's Bach, as audio and as MIDI
    "debian": ("planetblupi-music-ogg",),  # the benchmark's recorded artist
}
FOUR_TRACKS = ("soprano", "alto", "tenor", "bass")  # every zoo score is mapped to these, by range


class ZooDataError(SettingsError):
    """The zoo's data cannot be read: a source missing, reserved, or holding too little music."""


@dataclass(frozen=True)
class RecordingSource:
    """Recorded music from one Debian package.

    Attributes:
        name: source tag ("wesnoth"); also the contrastive encoder's collection label.
        package: the Debian package that installs it.
        folder: where its files are (or the archive, for ``archive_member_prefix``).
        pattern: glob of its files inside ``folder`` ("*.ogg").
        archive_member_prefix: set when ``folder`` is a ``.pk3`` zip archive: members under
            this prefix ending in ``.ogg`` are the files.
        clips_per_file: clips cut from each file (fewer when the file is short).
        max_files: use at most this many files (the rule in the module docstring).
    """

    name: str
    package: str
    folder: Path
    pattern: str = "*.ogg"
    archive_member_prefix: str | None = None
    clips_per_file: int = 3
    max_files: int = 10_000


@dataclass(frozen=True)
class ScoreSource:
    """A collection of the music21 corpus, rendered and read as piano rolls.

    Attributes:
        name: source tag ("palestrina").
        collection: how its files are read (`harmonycloak.corpus.collections.Collection`).
        max_files: use at most this many files (the rule in the module docstring).
        pieces_per_file: tunes taken from a file of many (ABC), in file order.
        clips_per_piece: audio clips cut from one rendered piece (fewer when it is short).
    """

    name: str
    collection: Collection
    max_files: int = 10_000
    pieces_per_file: int = 1
    clips_per_piece: int = 1


@dataclass(frozen=True)
class SourceFile:
    """One file of a source.

    Attributes:
        source: the source's name.
        name: the file's name inside its source ("battle.ogg", "palestrina/Agnus_01.krn").
        path: the file on disk (for an archive member: the archive).
        member: the member's name inside the archive, or None.
        split: "train" or "heldout".
    """

    source: str
    name: str
    path: Path
    member: str | None
    split: str

    def read_bytes(self) -> bytes:
        if self.member is None:
            return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self.member)

    def sha256(self) -> str:
        """sha256 of the file's bytes (of the member, for an archive member)."""
        return hashlib.sha256(self.read_bytes()).hexdigest()


# Folders of single pieces by other composers (Bach's sons excluded: see RESERVED).
_MISC_FOLDERS = ("schumann_robert", "schumann_clara", "schubert", "corelli", "joplin", "handel", "weber", "verdi",
                 "beach", "chopin", "josquin", "airdsAirs", "lusitano", "luca", "ciconia", "liliuokalani",
                 "johnson_j_r", "schoenberg", "webern", "miscFolk")


def _range_collection(name: str, patterns: tuple[str, ...], description: str) -> Collection:
    return Collection(f"zoo-{name}", description, patterns, FOUR_TRACKS, "range")


def _recording_sources() -> dict[str, RecordingSource]:
    return {source.name: source for source in (
        RecordingSource("wesnoth", "wesnoth-1.16-music", Path("/usr/share/games/wesnoth/1.16/data/core/music")),
        RecordingSource("asc", "asc-music", Path("/usr/share/games/asc/music"), pattern="*.mp3", clips_per_file=8),
        RecordingSource("drascula", "drascula-music", Path("/usr/share/scummvm/drascula/audio")),
        RecordingSource("hyperrogue", "hyperrogue-music", Path("/usr/share/hyperrogue/music"), clips_per_file=4),
        RecordingSource("nexuiz", "nexuiz-music", Path("/usr/share/games/nexuiz/data/music.pk3"),
                        archive_member_prefix="sound/cdtracks/", clips_per_file=4),
        RecordingSource("ufoai", "ufoai-music", Path("/usr/share/games/ufoai/base/0music.pk3"),
                        archive_member_prefix="music/", clips_per_file=2),
    )}


def _score_sources() -> dict[str, ScoreSource]:
    misc = tuple(f"{folder}/**/*.{ext}" for folder in _MISC_FOLDERS for ext in ("mxl", "xml", "musicxml", "krn", "abc"))
    return {source.name: source for source in (
        ScoreSource("palestrina", _range_collection("palestrina", ("palestrina/*.krn",), "Palestrina's masses"),
                    max_files=70),
        ScoreSource("monteverdi", _range_collection("monteverdi", ("monteverdi/*.mxl",), "Monteverdi's madrigals")),
        ScoreSource("trecento", _range_collection("trecento", ("trecento/*.xml", "trecento/*.mxl"),
                                                  "Italian trecento songs"), max_files=50),
        ScoreSource("ryans-mammoth", _range_collection("ryans-mammoth", ("ryansMammoth/*.abc",),
                                                       "Ryan's Mammoth Collection of fiddle tunes (1883)"),
                    max_files=50),
        ScoreSource("oneills1850", _range_collection("oneills1850", ("oneills1850/*.abc",),
                                                     "O'Neill's 1850 Irish folk tunes"), pieces_per_file=3),
        ScoreSource("essen", _range_collection("essen", ("essenFolksong/*.abc",), "Essen folk songs"),
                    pieces_per_file=8),
        ScoreSource("beethoven", _range_collection("beethoven", ("beethoven/**/*.mxl",),
                                                   "Beethoven: string quartets and piano sonatas"),
                    clips_per_piece=3),
        ScoreSource("mozart", _range_collection("mozart", ("mozart/**/*.mxl",), "Mozart: string quartets"),
                    clips_per_piece=3),
        ScoreSource("haydn", _range_collection("haydn", ("haydn/**/*.mxl",), "Haydn: string quartet movements"),
                    clips_per_piece=2),
        ScoreSource("misc-classical", _range_collection("misc-classical", misc,
                                                        "other composers of the music21 corpus"), clips_per_piece=2),
    )}


def recording_sources() -> dict[str, RecordingSource]:
    """Name → recorded source, in a fixed order."""
    return _recording_sources()


def score_sources() -> dict[str, ScoreSource]:
    """Name → music21 collection source, in a fixed order."""
    return _score_sources()


def check_not_reserved(source: RecordingSource | ScoreSource) -> None:
    """Raise `ZooDataError` when a source would read reserved music (module docstring)."""
    if isinstance(source, RecordingSource) and source.package in RESERVED["debian"]:
        raise ZooDataError(f"{source.package} is reserved for the benchmark and never used by the zoo")
    if isinstance(source, ScoreSource):
        for pattern in source.collection.patterns:
            if pattern.split("/")[0] in RESERVED["music21"]:
                raise ZooDataError(f"music21 corpus folder {pattern.split('/')[0]!r} is reserved for the benchmark")


def _name_hash(prefix: str, name: str) -> str:
    return hashlib.sha256(f"{prefix}:{name}".encode()).hexdigest()


def choose_and_split(names: list[str], max_files: int) -> dict[str, str]:
    """Name → "train" | "heldout" for the files a source uses (module docstring's rule)."""
    chosen = sorted(names, key=lambda name: _name_hash("zoo-select", name))[:max_files]
    held = max(1, round(HELDOUT_FRACTION * len(chosen))) if len(chosen) > 1 else 0
    order = sorted(chosen, key=lambda name: _name_hash("zoo-split", name))
    return {name: ("heldout" if rank < held else "train") for rank, name in enumerate(order)}


def source_files(source: RecordingSource | ScoreSource) -> list[SourceFile]:
    """The files a source uses, sorted by name, each with its split.

    Raises:
        ZooDataError: the source is reserved, or none of its files is installed.
    """
    check_not_reserved(source)
    if isinstance(source, ScoreSource):
        root = corpus_folder()
        paths = {p for pattern in source.collection.patterns for p in root.glob(pattern) if p.is_file()}
        located = {p.relative_to(root).as_posix(): (p, None) for p in paths}
        max_files = source.max_files
    elif source.archive_member_prefix is not None:
        if not source.folder.is_file():
            located = {}
        else:
            with zipfile.ZipFile(source.folder) as archive:
                members = [m for m in archive.namelist()
                           if m.startswith(source.archive_member_prefix) and m.lower().endswith(".ogg")]
            located = {m[len(source.archive_member_prefix):]: (source.folder, m) for m in members}
        max_files = source.max_files
    else:
        located = {p.name: (p, None) for p in source.folder.glob(source.pattern) if p.is_file()}
        max_files = source.max_files
    if not located:
        where = getattr(source, "package", None) or "the music21 corpus"
        raise ZooDataError(f"source {source.name!r} has no files installed (from {where}; bash setup.sh --bench)")
    splits = choose_and_split(sorted(located), max_files)
    return [SourceFile(source.name, name, located[name][0], located[name][1], splits[name]) for name in sorted(splits)]
