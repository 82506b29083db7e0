"""The zoo's audio: fixed-length mono clips at 16 kHz from every source, cached, with splits.

A clip is `CLIP_S` seconds (10.24 s, 1,024 frames of 10 ms) of mono audio at
`SAMPLE_RATE_HZ`, scaled to a peak of `PEAK_LEVEL` (the benchmark's song level):

* recordings (`sources.RecordingSource`): the file is decoded with `io.audio.read_audio`,
  mixed to mono and resampled with `resampling.resample`; ``clips_per_file`` clips are taken
  evenly spread over the middle 80 % of the file (fewer when it is short);
* scores (`sources.ScoreSource`): each piece gets one General MIDI program per track, drawn
  from `PROGRAMS` by a generator seeded with the sha256 of the piece's name (so timbre varies
  between pieces but never between runs), is written as MIDI and rendered with
  `io.render.render_midi` at 16 kHz; the lead-in silence is cut and ``clips_per_piece``
  clips are spread evenly over the piece.

A clip whose peak is below `SILENT_PEAK` is dropped. The clips of one source file are cached
as one int16 ``.npy`` under ``~/.cache/harmonycloak/zoo`` (`default_cache_dir`), named by the
sha256 of everything that made them (the file's own sha256, the clip settings, the programs'
recipe, `CACHE_VERSION`), written atomically.

Shapes: C clips, N samples per clip (163,840), B batch, L crop length in samples.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.settings import WORKING_RATE_HZ
from harmonycloak.zoo.sources import (
    FOUR_TRACKS,
    RecordingSource,
    ScoreSource,
    SourceFile,
    ZooDataError,
    recording_sources,
    score_sources,
    source_files,
)

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = WORKING_RATE_HZ  # the project's working rate (paper §5.1: 16 kHz mono)
CLIP_S = 10.24  # clip length: 1,024 frames of the 10 ms front end
CLIP_SAMPLES = round(CLIP_S * SAMPLE_RATE_HZ)
PEAK_LEVEL = 0.5  # clips are scaled to this peak (−6 dBFS), as the benchmark's songs
SILENT_PEAK = 1e-3  # a clip whose peak (full scale 1) is below this is dropped
CACHE_VERSION = 1  # raise when clips are made differently
# General MIDI programs a rendered track may play: keyboards, plucked and bowed strings, voices,
# brass, reeds, flutes and mallets, so that timbre varies from piece to piece.
PROGRAMS = (0, 1, 4, 6, 11, 12, 16, 19, 21, 24, 25, 40, 41, 42, 43, 46, 48, 49, 52, 53, 56, 57, 60, 61,
            64, 68, 70, 71, 73, 74, 75, 89)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/harmonycloak/zoo``, by default ``~/.cache/harmonycloak/zoo``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "harmonycloak" / "zoo"


@dataclass(frozen=True)
class FileRecord:
    """What the zoo read from one source file, for the cards.

    Attributes:
        source: the source's name; name: the file inside it; sha256: of its bytes;
        split: "train" or "heldout"; clips: how many clips it gave.
    """

    source: str
    name: str
    sha256: str
    split: str
    clips: int


@dataclass
class ClipSet:
    """Clips of one split.

    Attributes:
        clips: int16 (C, N) at `SAMPLE_RATE_HZ`; float value = int16 / 32768.
        clip_source: (C,) index into ``source_names`` of each clip's source.
        clip_file: (C,) index into ``records`` of each clip's file.
        source_names: the sources present, in registry order.
        records: the files read, in registry then name order.
    """

    clips: np.ndarray
    clip_source: np.ndarray
    clip_file: np.ndarray
    source_names: list[str]
    records: list[FileRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.clips.shape[0])

    @property
    def hours(self) -> float:
        return self.clips.shape[0] * self.clips.shape[1] / SAMPLE_RATE_HZ / 3600

    def waveforms(self, clip_ids: Tensor | Iterable[int], start: int = 0, length: int | None = None) -> Tensor:
        """Float32 (B, L) in [-1, 1]: samples start..start+L of the given clips."""
        ids = torch.as_tensor(list(clip_ids) if not isinstance(clip_ids, Tensor) else clip_ids).numpy()
        end = self.clips.shape[1] if length is None else start + length
        return torch.from_numpy(self.clips[ids, start:end].astype(np.float32) / 32768.0)

    def random_crops(self, batch: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """`batch` crops of `length` samples at random clips and offsets drawn from `generator`.

        Returns (waveforms float32 (B, L), clip ids int64 (B,)).
        """
        ids = torch.randint(len(self), (batch,), generator=generator)
        offsets = torch.randint(self.clips.shape[1] - length + 1, (batch,), generator=generator)
        rows = [self.clips[i, o:o + length] for i, o in zip(ids.tolist(), offsets.tolist())]
        return torch.from_numpy(np.stack(rows).astype(np.float32) / 32768.0), ids


def _normalised(clip: np.ndarray) -> np.ndarray | None:
    peak = float(np.abs(clip).max(initial=0.0))
    if peak < SILENT_PEAK:
        return None
    return np.round(clip * (PEAK_LEVEL / peak) * 32767.0).astype(np.int16)


def _clips_of(mono: np.ndarray, count: int, middle_only: bool) -> np.ndarray:
    """Up to `count` clips (k, N) int16 of a mono signal, evenly spread, silent ones dropped."""
    count = min(count, mono.shape[0] // CLIP_SAMPLES)
    if count <= 0:
        return np.zeros((0, CLIP_SAMPLES), np.int16)
    room = mono.shape[0] - CLIP_SAMPLES
    if middle_only:
        starts = np.linspace(0.1 * room, 0.9 * room, count + 2)[1:-1]
    else:
        starts = np.linspace(0, room, count) if count > 1 else np.zeros(1)
    clips = [_normalised(mono[int(s):int(s) + CLIP_SAMPLES]) for s in starts]
    kept = [clip for clip in clips if clip is not None]
    return np.stack(kept) if kept else np.zeros((0, CLIP_SAMPLES), np.int16)


def _recording_clips(file: SourceFile, source: RecordingSource) -> np.ndarray:
    from harmonycloak.io.audio import read_audio
    from harmonycloak.resampling import resample

    if file.member is None:
        audio = read_audio(file.path)
    else:
        with tempfile.TemporaryDirectory(prefix="harmonycloak-zoo-") as folder:
            path = Path(folder) / Path(file.member).name
            path.write_bytes(file.read_bytes())
            audio = read_audio(path)
    mono = resample(audio.samples.mean(axis=0), audio.sample_rate_hz, SAMPLE_RATE_HZ).astype(np.float32)
    return _clips_of(mono, source.clips_per_file, middle_only=True)


def piece_programs(piece_name: str, tracks: int) -> list[int]:
    """The General MIDI program of each track of a rendered piece (module docstring)."""
    seed = int.from_bytes(hashlib.sha256(piece_name.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    return [int(PROGRAMS[i]) for i in rng.integers(len(PROGRAMS), size=tracks)]


def first_abc_tunes(path: Path, count: int) -> list[tuple[str, str]]:
    """(name "FILE#X", ABC text) of the first `count` tunes of an ABC file: the file's header
    (the lines before the first ``X:``) followed by one tune each."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("X:")]
    header = lines[: starts[0]] if starts else []
    tunes = []
    for start, end in zip(starts, starts[1:] + [len(lines)]):
        number = lines[start][2:].strip() or str(len(tunes) + 1)
        tunes.append((f"{path.name}#{number}", "\n".join(header + lines[start:end]) + "\n"))
        if len(tunes) == count:
            break
    return tunes


def _abc_pieces(path: Path, count: int) -> list:
    """The first `count` tunes of an ABC file that have notes, parsed one by one (a book of
    hundreds of tunes is never parsed whole)."""
    from harmonycloak.corpus import Piece
    from harmonycloak.corpus.notation import read_with_music21

    pieces = []
    with tempfile.TemporaryDirectory(prefix="harmonycloak-zoo-") as folder:
        for name, text in first_abc_tunes(path, 2 * count):
            tune_path = Path(folder) / "tune.abc"
            tune_path.write_text(text, encoding="utf-8")
            try:
                parsed = read_with_music21(tune_path)
            except HarmonyCloakError as error:
                log.info("zoo: skipping %s: %s", name, error)
                continue
            pieces += [Piece(name, score) for _, score in parsed[:1] if score.num_notes]
            if len(pieces) == count:
                break
    return pieces


def load_pieces(file: SourceFile, source: ScoreSource):
    """The first ``pieces_per_file`` non-empty pieces of a corpus file, each mapped to 4 tracks."""
    from harmonycloak.corpus import load_collection, tracks_by_range

    if file.path.suffix.lower() == ".abc":
        pieces = _abc_pieces(file.path, source.pieces_per_file)
    else:
        pieces = [p for p in load_collection(source.collection, sources=[file.path]) if p.score.num_notes]
    return [replace(p, score=tracks_by_range(p.score, FOUR_TRACKS)) for p in pieces[:source.pieces_per_file]]


def without_unison_overlaps(notes):
    """Notes with every note cut where the next note of the same pitch starts (none left empty).

    A track merged from several parts may hold one pitch twice at once, which MIDI cannot say.
    """
    from harmonycloak.music import Notes

    order = np.lexsort((notes.start_tick, notes.pitch))
    pitch, start, end = notes.pitch[order], notes.start_tick[order], notes.end_tick[order].copy()
    same = pitch[1:] == pitch[:-1]
    end[:-1] = np.where(same & (start[1:] < end[:-1]), start[1:], end[:-1])
    keep = end > start
    return Notes.from_arrays(pitch[keep], notes.velocity[order][keep], start[keep], end[keep])


def _render(score, programs: list[int]) -> np.ndarray:
    """Score → mono float32 at `SAMPLE_RATE_HZ`, lead-in silence cut."""
    from harmonycloak.io.midi import write_midi
    from harmonycloak.io.render import render_midi

    tracks = [replace(track, program=program, is_drum=False, channel=None, notes=without_unison_overlaps(track.notes))
              for track, program in zip(score.tracks, programs) if len(track.notes)]
    score = replace(score, tracks=tracks, source_midi=None)
    with tempfile.TemporaryDirectory(prefix="harmonycloak-zoo-") as folder:
        path = write_midi(score, Path(folder) / "piece.mid")
        mono = render_midi(path, SAMPLE_RATE_HZ).mean(axis=0)
    loud = np.flatnonzero(np.abs(mono) > 0.01 * max(float(np.abs(mono).max(initial=0.0)), 1e-9))
    return mono[loud[0]:] if loud.size else mono[:0]


def _score_clips(file: SourceFile, source: ScoreSource) -> np.ndarray:
    parts = []
    for piece in load_pieces(file, source):
        mono = _render(piece.score, piece_programs(f"{source.name}/{piece.name}", len(piece.score.tracks)))
        parts.append(_clips_of(mono, source.clips_per_piece, middle_only=False))
    return np.concatenate(parts) if parts else np.zeros((0, CLIP_SAMPLES), np.int16)


def _recipe(source: RecordingSource | ScoreSource) -> dict:
    """Everything besides the file's bytes that decides its clips."""
    common = {"version": CACHE_VERSION, "rate": SAMPLE_RATE_HZ, "clip": CLIP_SAMPLES, "peak": PEAK_LEVEL,
              "silent": SILENT_PEAK}
    if isinstance(source, RecordingSource):
        return common | {"kind": "recording", "clips_per_file": source.clips_per_file}
    recipe = common | {"kind": "score", "pieces_per_file": source.pieces_per_file,
                       "clips_per_piece": source.clips_per_piece, "programs": PROGRAMS, "tracks": FOUR_TRACKS,
                       "collection": repr(source.collection)}
    if any(pattern.endswith(".abc") for pattern in source.collection.patterns):
        recipe["abc"] = "tune by tune"  # ABC books are read a tune at a time (`first_abc_tunes`)
    return recipe


def file_clips(file: SourceFile, source: RecordingSource | ScoreSource, cache_dir: Path | None = None,
               digest: str | None = None) -> tuple[np.ndarray, str]:
    """(clips int16 (k, N), sha256 of the file): from the cache, else made and cached."""
    digest = digest or file.sha256()
    key = hashlib.sha256(json.dumps([digest, _recipe(source)], sort_keys=True).encode()).hexdigest()[:24]
    folder = (cache_dir or default_cache_dir()) / f"v{CACHE_VERSION}" / source.name
    path = folder / f"{Path(file.name).stem[:60]}.{key}.npy"
    if path.is_file():
        try:
            return np.load(path), digest
        except (OSError, ValueError) as error:  # a broken entry is rebuilt
            log.warning("rebuilding broken zoo cache entry %s: %s", path, error)
    make: Callable = _recording_clips if isinstance(source, RecordingSource) else _score_clips
    try:
        clips = make(file, source)
    except HarmonyCloakError as error:
        log.warning("zoo: leaving out %s/%s: %s", source.name, file.name, error)
        clips = np.zeros((0, CLIP_SAMPLES), np.int16)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, ZooDataError) as temporary, open(temporary, "wb") as handle:
        np.save(handle, clips)
    return clips, digest


def all_sources() -> dict[str, RecordingSource | ScoreSource]:
    """Every zoo audio source, recordings first, in registry order."""
    return recording_sources() | score_sources()


def load_clip_set(split: str, sources: Iterable[str] | None = None, max_files_per_source: int | None = None,
                  cache_dir: Path | None = None, progress: Callable[[str], None] | None = None) -> ClipSet:
    """The clips of `split` ("train" or "heldout") from `sources` (default: all).

    Args:
        max_files_per_source: read only the first files of each source (by name), for quick checks.
        progress: called with a line per source read.

    Raises:
        ZooDataError: an unknown split or source, a reserved or missing source, or no clips at all.
    """
    if split not in ("train", "heldout"):
        raise ZooDataError(f"the zoo's splits are 'train' and 'heldout', not {split!r}")
    registry = all_sources()
    names = list(registry) if sources is None else list(sources)
    unknown = [name for name in names if name not in registry]
    if unknown:
        raise ZooDataError(f"unknown zoo source(s) {', '.join(unknown)} (known: {', '.join(registry)})")
    clips, clip_source, clip_file, records, present = [], [], [], [], []
    for name in [name for name in registry if name in names]:
        source = registry[name]
        files = [f for f in source_files(source) if f.split == split][:max_files_per_source]
        before = len(records)
        for file in files:
            samples, digest = file_clips(file, source, cache_dir)
            records.append(FileRecord(name, file.name, digest, split, int(samples.shape[0])))
            if samples.shape[0]:
                clips.append(samples)
                clip_source += [len(present)] * samples.shape[0]
                clip_file += [len(records) - 1] * samples.shape[0]
        present.append(name)
        if progress is not None:
            count = sum(r.clips for r in records[before:])
            progress(f"{name}: {len(files)} {split} files, {count} clips")
    if not clips:
        raise ZooDataError(f"the zoo's {split} split holds no clips (bash setup.sh --bench installs the music)")
    return ClipSet(np.concatenate(clips), np.asarray(clip_source), np.asarray(clip_file), present, records)
