"""The zoo's symbolic music: 4-track piano-roll phrases of the music21 corpus (never Bach).

The same score sources and the same file splits as the audio (`sources.score_sources`,
`sources.source_files`): each piece is mapped to four tracks by range
(`corpus.tracks_by_range`), read as a piano roll at ``steps_per_bar / 4`` steps per beat, and
cut into phrases of ``bars`` bars on bar lines (`cloak.midi_problem.phrase_steps`, as the
MIDI cloak and the benchmark cut them). A piece with a bar longer than four beats (the
breves of Palestrina, madrigals in 4/2) is re-barred in 4/4 from its first note: the
models' bar slots hold four beats. At most `MAX_PHRASES_PER_PIECE` phrases, evenly
spaced, are kept per piece so that long quartets do not outweigh folk tunes.

Phrases are held as uint8 velocities (0–127) and given to the models as velocity / 127.
The phrases of each file are cached beside the audio clips (`audio_corpus.default_cache_dir`),
named by the sha256 of the file and of the settings that cut them.

Shapes: phrases (B, M = 4, T = bars × steps_per_bar, 128).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from harmonycloak.io.atomic import atomic_output

from harmonycloak.zoo.entry_data import EntryData
from harmonycloak.zoo.sources import ZooDataError, score_sources, source_files

log = logging.getLogger(__name__)

MAX_PHRASES_PER_PIECE = 6  # phrases kept per piece, evenly spaced over it


def rebarred_in_four(score):
    """The score with bar lines every four beats from tick 0 and one 4/4 time signature."""
    from dataclasses import replace

    from harmonycloak.music import TimeSignature

    bar_ticks = 4 * score.ticks_per_beat
    end = max((int(track.notes.end_tick.max()) for track in score.tracks if len(track.notes)), default=0)
    lines = np.arange(0, end + bar_ticks, bar_ticks, dtype=np.int64)
    return replace(score, bar_lines_tick=lines if lines.size > 1 else np.array([0, bar_ticks]),
                   time_signatures=[TimeSignature(0, 4, 4)], source_midi=None)


def piece_phrases(score, steps_per_bar: int, bars: int) -> np.ndarray | None:
    """uint8 phrases (k, 4, T, 128) of one 4-track score, or None when it has no notes."""
    from harmonycloak.cloak.model_input import longest_bar_steps, phrase_steps, phrases_of

    steps_per_beat = steps_per_bar // 4
    if not score.num_notes:
        return None
    if longest_bar_steps(score, steps_per_beat) > steps_per_bar:
        score = rebarred_in_four(score)
    roll = score.piano_roll(steps_per_beat)
    steps = phrase_steps(roll, steps_per_bar, bars)
    if steps.shape[0] > MAX_PHRASES_PER_PIECE:
        steps = steps[torch.linspace(0, steps.shape[0] - 1, MAX_PHRASES_PER_PIECE).round().long()]
    phrases = phrases_of(torch.from_numpy(roll.velocities), steps)
    return (phrases * 127).round().clamp(0, 127).to(torch.uint8).numpy()


def load_phrases(split: str, steps_per_bar: int, bars: int, max_files_per_source: int | None = None,
                 sources: tuple[str, ...] | None = None) -> tuple[np.ndarray, list[dict]]:
    """(uint8 phrases (P, 4, T, 128), file records) of a split, from `sources` (default: every score source)."""
    from harmonycloak.zoo.audio_corpus import load_pieces

    phrases, records = [], []
    for name, source in score_sources().items():
        if sources is not None and name not in sources:
            continue
        for file in [f for f in source_files(source) if f.split == split][:max_files_per_source]:
            digest = file.sha256()
            cut = _cached_file_phrases(file, source, digest, steps_per_bar, bars, load_pieces)
            if cut.shape[0]:
                phrases.append(cut)
            records.append({"source": name, "name": file.name, "sha256": digest, "split": split,
                            "phrases": int(cut.shape[0])})
    if not phrases:
        raise ZooDataError(f"the zoo's symbolic {split} split holds no phrases")
    return np.concatenate(phrases), records


def _cached_file_phrases(file, source, digest: str, steps_per_bar: int, bars: int, load_pieces) -> np.ndarray:
    """uint8 phrases (k, 4, T, 128) of one file: from the cache, else cut and cached."""
    from harmonycloak.zoo.audio_corpus import CACHE_VERSION, default_cache_dir

    recipe = [digest, CACHE_VERSION, steps_per_bar, bars, MAX_PHRASES_PER_PIECE, source.pieces_per_file,
              repr(source.collection), "rebarred-in-four"]
    key = hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:24]
    folder = default_cache_dir() / f"v{CACHE_VERSION}" / "phrases" / source.name
    path = folder / f"{Path(file.name).stem[:60]}.{key}.npy"
    if path.is_file():
        return np.load(path)
    try:
        pieces = load_pieces(file, source)
    except ZooDataError as error:
        log.warning("zoo: leaving out %s: %s", file.name, error)
        pieces = []
    cuts = [cut for cut in (piece_phrases(p.score, steps_per_bar, bars) for p in pieces) if cut is not None]
    phrases = np.concatenate(cuts) if cuts else np.zeros((0, 4, steps_per_bar * bars, 128), np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, ZooDataError) as temporary, open(temporary, "wb") as handle:
        np.save(handle, phrases)
    return phrases


def load_phrase_data(steps_per_bar: int, bars: int) -> EntryData:
    """The "midi" recipe: training phrases sampled at random, every held-out phrase for evaluation."""
    train, train_records = load_phrases("train", steps_per_bar, bars)
    heldout, heldout_records = load_phrases("heldout", steps_per_bar, bars)

    def sample(batch: int, generator: torch.Generator) -> torch.Tensor:
        ids = torch.randint(train.shape[0], (batch,), generator=generator).numpy()
        return torch.from_numpy(train[ids].astype(np.float32) / 127.0)

    describe = {"recipe": "midi", "steps_per_bar": steps_per_bar, "bars": bars, "train_phrases": int(train.shape[0]),
                "heldout_phrases": int(heldout.shape[0]), "files": train_records + heldout_records}
    return EntryData(sample, torch.from_numpy(heldout.astype(np.float32) / 127.0), describe)
