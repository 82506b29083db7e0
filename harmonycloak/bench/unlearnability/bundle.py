"""The threat models' music in one file, for a machine without the corpus.

Loading the benchmark's data needs Debian's soundtracks, FluidSynth and the music21 corpus;
a GPU machine lent for minutes has none of them. `save_threat_data` writes what
`load_threat_data` made (the artist's album, the T1 corpus, the contrastive reference clips
and, when the suite needs them, the held-out songs) to one `.npz`, the samples exactly as
they are (float32), with a key of everything the data depends on; `load_threat_data_bundle`
reads it back for a suite whose key matches, and refuses any other. The MIDI families' pieces
are not in it: a suite that runs them needs the corpus.

Shapes: every song is (N,) float32 mono at the working rate; a group is stored as the
concatenation of its songs (total,) with their lengths.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from harmonycloak.bench.unlearnability.data import Album, Song
from harmonycloak.bench.unlearnability.midi_mimicry import MIDI_MIMICRY_FAMILIES
from harmonycloak.bench.unlearnability.threat_experiment import REFERENCE_CLIPS, BenchData
from harmonycloak.errors import SettingsError

BUNDLE_VERSION = 1
GROUPS = ("released", "unreleased", "corpus", "heldout")


def needs_heldout(suite) -> bool:
    """The held-out songs are read by T2's style measures and by other music released in place of the album."""
    from harmonycloak.bench.unlearnability.releases import OTHER_MUSIC

    return "mimicry" in suite.threat_models and (
        suite.threat_generated is not None or OTHER_MUSIC in suite.methods_for("mimicry"))


def threat_data_key(suite) -> str:
    """A digest of every setting the threat models' audio depends on."""
    described = repr((suite.album, suite.data, suite.threat_corpus, suite.protected_fraction,
                      suite.threats.scratch_released, REFERENCE_CLIPS))
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def check_audio_only(suite) -> None:
    """Refuse a suite whose threat models run MIDI families: their pieces are not in a bundle."""
    if "mimicry" in suite.threat_models and any(family in MIDI_MIMICRY_FAMILIES
                                                for family in suite.families_for_threats):
        raise SettingsError("a data bundle holds no MIDI pieces: run the MIDI families where the corpus is installed "
                            "(--families without musegan and symphonynet here)")


def save_threat_data(data: BenchData, suite, path: Path) -> Path:
    """Write `data` (made by `load_threat_data(suite)`) to `path` (.npz); the held-out songs only
    when the suite reads them. Returns the path written."""
    check_audio_only(suite)
    groups = {"released": data.album.released, "unreleased": data.album.unreleased, "corpus": data.corpus,
              "heldout": data.heldout if needs_heldout(suite) else []}
    meta = {"version": BUNDLE_VERSION, "key": threat_data_key(suite), "suite": suite.name,
            "has_heldout": needs_heldout(suite),
            "songs": {group: [[song.name, song.artist, song.kind] for song in songs] for group, songs in groups.items()}}
    arrays = {}
    for group, songs in groups.items():
        arrays[f"{group}_samples"] = (np.concatenate([song.samples for song in songs]).astype(np.float32)
                                      if songs else np.zeros(0, np.float32))
        arrays[f"{group}_lengths"] = np.array([len(song.samples) for song in songs], dtype=np.int64)
    path = Path(path)
    with path.open("wb") as file:  # np.savez adds ".npz" to a name without it; a file object keeps the name
        np.savez(file, meta=np.array(json.dumps(meta)), references=data.references.numpy(), **arrays)
    return path


def load_threat_data_bundle(path: Path, suite) -> BenchData:
    """The threat models' data of `suite` from a bundle written by `save_threat_data` for the same data."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"]))
            arrays = {name: stored[name] for name in stored.files if name != "meta"}
    except (OSError, ValueError, KeyError) as error:
        raise SettingsError(f"{path}: not a benchmark data bundle ({error})") from error
    if meta.get("version") != BUNDLE_VERSION:
        raise SettingsError(f"{path}: a data bundle of version {meta.get('version')}; this version reads "
                            f"{BUNDLE_VERSION} (write it again with --export-data)")
    if meta["key"] != threat_data_key(suite):
        raise SettingsError(f"{path}: made for other data (suite '{meta['suite']}' with other settings) than "
                            f"suite '{suite.name}' reads; write it again with --export-data")
    check_audio_only(suite)
    if needs_heldout(suite) and not meta["has_heldout"]:
        raise SettingsError(f"{path}: holds no held-out songs, which this run's T2 measures read; write it again "
                            "with --export-data for a run with --parts mimicry")
    groups = {group: _songs(meta["songs"][group], arrays[f"{group}_samples"], arrays[f"{group}_lengths"])
              for group in GROUPS}
    return BenchData(Album(groups["released"], groups["unreleased"]), groups["corpus"],
                     torch.from_numpy(arrays["references"]), groups["heldout"], None)


def _songs(described: list[list[str]], samples: np.ndarray, lengths: np.ndarray) -> list[Song]:
    ends = np.cumsum(lengths)
    return [Song(name, artist, kind, samples[end - length:end].copy())
            for (name, artist, kind), end, length in zip(described, ends, lengths)]
