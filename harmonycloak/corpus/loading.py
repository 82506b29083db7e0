"""Load corpora as pieces of music: the music21 corpus by collection, or a folder of MIDI.

    >>> from harmonycloak.corpus import load_collection, stack_bars
    >>> pieces = load_collection("bach", limit=10)        # parsed once, then from the cache
    >>> bars = stack_bars(pieces, steps_per_beat=4)       # (bars, 4 tracks, 16 steps, 128)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import harmonycloak.corpus.cache as cache
from harmonycloak.corpus.collections import Collection, corpus_folder, get_collection, list_sources
from harmonycloak.corpus.notation import MUSIC21_FORMATS, read_with_music21
from harmonycloak.corpus.voices import satb_tracks, tracks_by_range
from harmonycloak.errors import HarmonyCloakError, MidiFileError, SettingsError
from harmonycloak.io.midi import MIDI_SUFFIXES, read_midi, read_musicxml
from harmonycloak.music import Score

log = logging.getLogger(__name__)


@dataclass
class Piece:
    """One piece of a corpus.

    Attributes:
        name: where it comes from, relative to its corpus ("bach/bwv1.6.mxl",
            "essenFolksong/han1.abc#12", or a path inside the user's folder).
        score: its notes, with the collection's tracks.
    """

    name: str
    score: Score


def load_collection(
    name: str | Collection,
    *,
    limit: int | None = None,
    sources: list[Path] | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> list[Piece]:
    """The pieces of a music21 corpus collection ("bach", "palestrina", "monteverdi", "essen").

    Args:
        name: a key of `COLLECTIONS`, or a `Collection` defined elsewhere (read with ``sources``).
        limit: read only the first ``limit`` source files (sorted by name).
        sources: read these files of the collection instead (see `list_sources`).
        cache_dir: where parsed files are cached; None for `default_cache_dir()`.
        use_cache: False to parse everything and leave the cache alone.

    Files that are not pieces of the collection (a Bach score that is not a four-part
    chorale) or cannot be parsed are skipped and logged.

    Raises:
        SettingsError: an unknown collection.
        MidiFileError: a file given in ``sources`` does not exist.
    """
    collection = name if isinstance(name, Collection) else get_collection(name)
    files = list(sources) if sources is not None else list_sources(collection.name)
    if limit is not None:
        files = files[:limit]
    cache_dir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    root = corpus_folder()
    pieces: list[Piece] = []
    for source in files:
        source = Path(source)
        if not source.is_file():
            raise MidiFileError("does not exist", source)
        entry = cache.entry_path(cache_dir, collection.name, source)
        key = cache.cache_key(source, repr(collection)) if use_cache else ""
        stored = cache.load_entry(entry, key) if use_cache else None
        if stored is None:
            stored = _parse_source(source, collection, root)
            if use_cache:
                cache.save_entry(entry, key, *stored)
        scores, skipped = stored
        for piece_name, reason in skipped:
            log.info("skipping %s: %s", piece_name, reason)
        pieces.extend(Piece(piece_name, score) for piece_name, score in scores)
    return pieces


def _parse_source(
    source: Path, collection: Collection, root: Path
) -> tuple[list[tuple[str, Score]], list[tuple[str, str]]]:
    """Parse one corpus file and map its parts: (pieces, skipped (name, reason))."""
    try:
        prefix = source.relative_to(root).parent.as_posix() + "/"
    except ValueError:
        prefix = ""
    try:
        if source.suffix.lower() in MUSIC21_FORMATS:
            parsed = [(f"{prefix}{name}", score) for name, score in read_with_music21(source)]
        else:
            parsed = [(f"{prefix}{source.name}", read_musicxml(source))]
    except HarmonyCloakError as error:
        return [], [(f"{prefix}{source.name}", error.message)]
    pieces, skipped = [], []
    for piece_name, score in parsed:
        if collection.voices == "satb":
            mapped = satb_tracks(score, collection.track_names)
            if mapped is None:
                names = ", ".join(track.name or "?" for track in score.tracks)
                skipped.append((piece_name, f"not a four-part chorale (parts: {names})"))
                continue
        else:
            mapped = tracks_by_range(score, collection.track_names)
        pieces.append((piece_name, mapped))
    return pieces, skipped


def list_midi_files(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """The .mid and .midi files in ``folder`` (and its subfolders), sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MidiFileError("is not a folder", folder)
    pattern = "**/*" if recursive else "*"
    return sorted(
        path for path in folder.glob(pattern)
        if path.is_file() and path.suffix.lower() in MIDI_SUFFIXES
    )


def load_midi_folder(
    folder: str | Path, *, recursive: bool = True
) -> tuple[list[Piece], list[MidiFileError]]:
    """A folder of the user's own MIDI files as a corpus.

    Each file keeps its own tracks (map them with `tracks_by_range` to stack bars of many
    files). A file that cannot be read does not stop the others: it is returned with its
    error.

    Returns:
        (pieces, errors): the files read, named by their path inside ``folder``, and one
        `MidiFileError` (naming the file) per file that could not be read.
    """
    folder = Path(folder)
    pieces, errors = [], []
    for path in list_midi_files(folder, recursive=recursive):
        try:
            pieces.append(Piece(path.relative_to(folder).as_posix(), read_midi(path)))
        except MidiFileError as error:
            errors.append(error)
    return pieces, errors


def stack_bars(
    pieces: list[Piece],
    *,
    steps_per_beat: int = 4,
    time_signature: tuple[int, int] | None = (4, 4),
) -> np.ndarray:
    """The bars of many pieces in one array, for training.

    Args:
        pieces: pieces with the same number of tracks (one collection).
        steps_per_beat: piano-roll resolution. 4 (a 16th-note grid) is what chorale models
            use; it holds the chorales' rhythms (20 of their 220,000 note starts and ends fall
            between 16ths). Memory is ``bars * tracks * steps_per_bar * 128 * 4`` bytes:
            205 MB for the 6,249 bars of the 4/4 chorales at 4 steps per beat, 1.2 GB at 24.
        time_signature: keep only pieces written entirely in this metre, and none of whose
            bars is longer than the metre says (a few chorales hold the final chord over a
            double-length bar); None keeps all, with slots as long as the longest bar of any
            piece.

    Returns:
        float32, shape (bars, tracks, steps_per_bar, 128): velocity / 127; a pickup bar is
        right-aligned in its slot and a short last bar left-aligned (see `PianoRoll.bars`).
    """
    if time_signature is not None:
        pieces = [
            piece for piece in pieces
            if all((ts.numerator, ts.denominator) == tuple(time_signature) for ts in piece.score.time_signatures)
        ]
    if not pieces:
        return np.zeros((0, 0, 0, 128), dtype=np.float32)  # nothing to stack
    if len({len(piece.score.tracks) for piece in pieces}) > 1:
        raise SettingsError("the pieces have different numbers of tracks; map them to the same tracks first")
    rolls = [piece.score.piano_roll(steps_per_beat) for piece in pieces]
    if time_signature is not None:
        steps_per_bar = time_signature[0] * 4 * steps_per_beat / time_signature[1]
        if steps_per_bar != int(steps_per_bar):
            raise SettingsError(
                f"a {time_signature[0]}/{time_signature[1]} bar is not a whole number of steps "
                f"at {steps_per_beat} steps per beat"
            )
        steps_per_bar = int(steps_per_bar)
        regular = [int(np.diff(roll.bar_lines_step).max(initial=0)) <= steps_per_bar for roll in rolls]
        for piece, fits in zip(pieces, regular):
            if not fits:
                log.info("leaving out %s: a bar is longer than %s/%s", piece.name, *time_signature)
        rolls = [roll for roll, fits in zip(rolls, regular) if fits]
        if not rolls:
            return np.zeros((0, len(pieces[0].score.tracks), steps_per_bar, 128), dtype=np.float32)
    else:
        steps_per_bar = max(int(np.diff(roll.bar_lines_step).max(initial=0)) for roll in rolls)
    return np.concatenate([roll.bars(steps_per_bar).transpose(1, 0, 2, 3) for roll in rolls])
