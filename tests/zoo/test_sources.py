"""The zoo's data sources: reserved music refused, fixed splits, about a tenth held out."""

import hashlib
from pathlib import Path

import pytest

from harmonycloak.corpus.collections import Collection
from harmonycloak.zoo.sources import (
    RESERVED,
    RecordingSource,
    ScoreSource,
    ZooDataError,
    check_not_reserved,
    choose_and_split,
    recording_sources,
    score_sources,
)


def test_no_source_reads_bach_or_planetblupi():
    for source in recording_sources().values():
        assert source.package not in RESERVED["debian"]
        assert "planetblupi" not in str(source.folder)
    for source in score_sources().values():
        for pattern in source.collection.patterns:
            assert pattern.split("/")[0] not in ("bach", "cpebach")


def test_reserved_sources_are_refused():
    with pytest.raises(ZooDataError):
        check_not_reserved(RecordingSource("blupi", "planetblupi-music-ogg", Path("/usr/share/planetblupi/music")))
    with pytest.raises(ZooDataError):
        check_not_reserved(ScoreSource("bach", Collection("zoo-bach", "", ("bach/*.mxl",), ("a",), "range")))


def test_split_holds_out_a_tenth_by_name_hash():
    names = [f"track{i:03d}.ogg" for i in range(50)]
    splits = choose_and_split(names, max_files=10_000)
    held = sorted(name for name, split in splits.items() if split == "heldout")
    assert len(held) == 5
    # by hand: the 5 names of smallest sha256("zoo-split:" + name)
    by_hash = sorted(names, key=lambda n: hashlib.sha256(f"zoo-split:{n}".encode()).hexdigest())[:5]
    assert held == sorted(by_hash)
    # the split of a file does not depend on the order the names come in
    assert choose_and_split(names[::-1], max_files=10_000) == splits


def test_selection_keeps_max_files_and_every_source_holds_some_out():
    names = [f"piece{i}.krn" for i in range(30)]
    splits = choose_and_split(names, max_files=12)
    assert len(splits) == 12 and sum(s == "heldout" for s in splits.values()) == 1
    assert choose_and_split(["a.ogg", "b.ogg", "c.ogg"], 10) == choose_and_split(["c.ogg", "a.ogg", "b.ogg"], 10)
    assert list(choose_and_split(["a.ogg", "b.ogg", "c.ogg"], 10).values()).count("heldout") == 1
