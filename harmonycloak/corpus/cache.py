"""A disk cache of parsed corpus files: one ``.npz`` per source file.

Parsing is the slow part of loading a corpus (music21 takes about 40 ms per folk song), so
the notes of every piece read from a source file are stored once, with a key: the cache
format version, the source file's size and modification time, the versions of muspy and
music21, and the collection's track mapping. An entry whose key differs is stale and is
rebuilt. Entries are written atomically (temporary file, then rename), so a crash or two
processes loading at once never leave a broken entry.

Layout of an entry (``np.savez``, no pickles):
    key: str, the key above.
    meta: str, JSON: per piece its name, title, format, ticks per beat, tempo changes, time
        signatures, bar lines and tracks (name, program, is_drum); and the skipped pieces.
    notes: int64, shape (notes, 6): piece, track, pitch, velocity, start_tick, end_tick.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track
from harmonycloak.optional import import_optional

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # raise when the stored layout or the parsing changes


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/harmonycloak/corpus``, by default ``~/.cache/harmonycloak/corpus``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "harmonycloak" / "corpus"


def cache_key(source: Path, collection_spec: str) -> str:
    """What must match for a cached entry of ``source`` to be used."""
    muspy = import_optional("muspy", "reading the music21 corpus")
    music21 = import_optional("music21", "reading the music21 corpus")

    stat = source.stat()
    return json.dumps(
        {
            "version": CACHE_VERSION,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "muspy": muspy.__version__,
            "music21": music21.__version__,
            "collection": collection_spec,
        },
        sort_keys=True,
    )


def entry_path(cache_dir: Path, collection: str, source: Path) -> Path:
    """Where the entry of ``source`` lives: named by the file and a hash of its full path."""
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    return cache_dir / f"v{CACHE_VERSION}" / collection / f"{source.name}.{digest}.npz"


def load_entry(path: Path, key: str) -> tuple[list[tuple[str, Score]], list[tuple[str, str]]] | None:
    """The pieces and skipped pieces of an entry, or None if it is missing, stale or broken."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as entry:
            if str(entry["key"]) != key:
                return None
            meta = json.loads(str(entry["meta"]))
            notes = entry["notes"]
    except Exception as error:  # a broken entry is rebuilt, never fatal
        log.warning("ignoring broken corpus cache entry %s: %s", path, error)
        return None
    return _pieces_from_arrays(meta, notes), [tuple(item) for item in meta["skipped"]]


def save_entry(
    path: Path, key: str, pieces: list[tuple[str, Score]], skipped: list[tuple[str, str]]
) -> None:
    """Store an entry; a cache that cannot be written is logged and otherwise ignored."""
    meta, notes = _pieces_to_arrays(pieces)
    meta["skipped"] = [list(item) for item in skipped]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, HarmonyCloakError) as temporary, open(temporary, "wb") as file:
            np.savez(file, key=np.array(key), meta=np.array(json.dumps(meta)), notes=notes)
    except (OSError, HarmonyCloakError) as error:
        log.warning("cannot write corpus cache entry %s: %s", path, error)


def _pieces_to_arrays(pieces: list[tuple[str, Score]]) -> tuple[dict, np.ndarray]:
    described, rows = [], []
    for piece_index, (name, score) in enumerate(pieces):
        described.append(
            {
                "name": name,
                "title": score.title,
                "format": score.source_format,
                "path": str(score.source_path) if score.source_path else None,
                "ticks_per_beat": score.ticks_per_beat,
                "tempos": [
                    [int(t), float(us)]
                    for t, us in zip(score.tempo_map.change_ticks, score.tempo_map.microseconds_per_beat)
                ],
                "time_signatures": [[ts.tick, ts.numerator, ts.denominator] for ts in score.time_signatures],
                "bar_lines_tick": [int(t) for t in score.bar_lines_tick],
                "tracks": [[t.name, t.program, t.is_drum] for t in score.tracks],
            }
        )
        for track_index, track in enumerate(score.tracks):
            n = track.notes
            rows.append(
                np.stack(
                    [
                        np.full(len(n), piece_index),
                        np.full(len(n), track_index),
                        n.pitch, n.velocity, n.start_tick, n.end_tick,
                    ],
                    axis=1,
                ).astype(np.int64)
            )
    notes = np.concatenate(rows) if rows else np.zeros((0, 6), dtype=np.int64)
    return {"pieces": described}, notes


def _pieces_from_arrays(meta: dict, notes: np.ndarray) -> list[tuple[str, Score]]:
    pieces = []
    for piece_index, info in enumerate(meta["pieces"]):
        of_piece = notes[notes[:, 0] == piece_index]
        tracks = []
        for track_index, (name, program, is_drum) in enumerate(info["tracks"]):
            rows = of_piece[of_piece[:, 1] == track_index]
            tracks.append(
                Track(name, int(program), bool(is_drum),
                      Notes.from_arrays(rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]))
            )
        score = Score(
            tracks=tracks,
            tempo_map=TempoMap.from_changes(info["ticks_per_beat"], [tuple(t) for t in info["tempos"]]),
            time_signatures=[TimeSignature(*ts) for ts in info["time_signatures"]],
            bar_lines_tick=np.asarray(info["bar_lines_tick"], dtype=np.int64),
            source_path=Path(info["path"]) if info["path"] else None,
            source_format=info["format"],
            title=info["title"],
        )
        pieces.append((info["name"], score))
    return pieces
