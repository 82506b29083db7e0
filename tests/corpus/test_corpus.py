"""The music21 corpus and a folder of MIDI files as corpora: checked against music21's own
reading of the same files, and the cache against a fresh parse."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from harmonycloak.corpus import (
    COLLECTIONS,
    corpus_folder,
    list_sources,
    load_collection,
    load_midi_folder,
    stack_bars,
    tracks_by_range,
)
from harmonycloak.corpus import loading
from harmonycloak.errors import MidiFileError, SettingsError
from harmonycloak.io.midi import write_midi
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

PICKUP_CHORALE = "bach/bwv1.6.mxl"  # one-beat pickup, a horn part beside the four voices
REPEAT_CHORALE = "bach/bwv2.6.mxl"  # 13 measures written, 18 played (a repeat)


def music21_reading(relative):
    """music21's parse, repeats expanded: (voice name -> list of (offset, midi pitch)), measures."""
    import music21

    parsed = music21.converter.parse(corpus_folder() / relative).expandRepeats()
    voices = {}
    for part in parsed.parts:
        if part.partName in ("Soprano", "Alto", "Tenor", "Bass"):
            notes = part.stripTies().flatten().notes
            voices[part.partName.lower()] = [(float(n.offset), p.midi) for n in notes for p in n.pitches]
    measures = len(parsed.parts[0].getElementsByClass(music21.stream.Measure))
    return voices, measures


@pytest.mark.parametrize("relative", [PICKUP_CHORALE, REPEAT_CHORALE])
def test_chorale_loads_as_four_voices_with_music21s_notes_and_bars(tmp_path, relative):
    (piece,) = load_collection("bach", sources=[corpus_folder() / relative], cache_dir=tmp_path)
    voices, measures = music21_reading(relative)
    score = piece.score
    assert piece.name == relative
    assert [t.name for t in score.tracks] == ["soprano", "alto", "tenor", "bass"]
    assert len(voices) == 4
    assert len(score.bar_lines_tick) - 1 == measures
    for track in score.tracks:
        ours = sorted(zip((track.notes.start_tick / score.ticks_per_beat).tolist(), track.notes.pitch.tolist()))
        assert ours == sorted(voices[track.name])
    bars = score.piano_roll(steps_per_beat=4).bars(steps_per_bar=16)
    assert bars.shape == (4, measures, 16, 128)


def test_cache_returns_identical_arrays_without_parsing(tmp_path, monkeypatch):
    sources = [corpus_folder() / PICKUP_CHORALE, corpus_folder() / REPEAT_CHORALE]
    fresh = load_collection("bach", sources=sources, cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.npz"))) == 2

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(loading, "_parse_source", no_parsing)
    cached = load_collection("bach", sources=sources, cache_dir=tmp_path)
    assert [p.name for p in cached] == [p.name for p in fresh]
    for a, b in zip(fresh, cached):
        assert a.score.title == b.score.title
        np.testing.assert_array_equal(a.score.bar_lines_tick, b.score.bar_lines_tick)
        np.testing.assert_array_equal(a.score.tempo_map.microseconds_per_beat, b.score.tempo_map.microseconds_per_beat)
        assert a.score.time_signatures == b.score.time_signatures
        for ta, tb in zip(a.score.tracks, b.score.tracks):
            assert (ta.name, ta.program, ta.is_drum) == (tb.name, tb.program, tb.is_drum)
            for field in ("pitch", "velocity", "start_tick", "end_tick"):
                np.testing.assert_array_equal(getattr(ta.notes, field), getattr(tb.notes, field))
        np.testing.assert_array_equal(a.score.piano_roll().velocities, b.score.piano_roll().velocities)


def test_stale_cache_is_rebuilt(tmp_path, monkeypatch):
    source = tmp_path / "bwv1.6.mxl"
    shutil.copy(corpus_folder() / PICKUP_CHORALE, source)
    cache_dir = tmp_path / "cache"
    load_collection("bach", sources=[source], cache_dir=cache_dir)
    calls = []
    parse = loading._parse_source
    monkeypatch.setattr(loading, "_parse_source", lambda *a: calls.append(a) or parse(*a))
    load_collection("bach", sources=[source], cache_dir=cache_dir)
    assert calls == []
    os.utime(source, ns=(0, 10**18))  # the source changed: the entry is stale
    (piece,) = load_collection("bach", sources=[source], cache_dir=cache_dir)
    assert len(calls) == 1 and len(piece.score.tracks) == 4


def test_broken_cache_entry_is_rebuilt(tmp_path):
    source = corpus_folder() / PICKUP_CHORALE
    load_collection("bach", sources=[source], cache_dir=tmp_path)
    (entry,) = tmp_path.rglob("*.npz")
    entry.write_bytes(b"garbage")
    (piece,) = load_collection("bach", sources=[source], cache_dir=tmp_path)
    assert len(piece.score.tracks) == 4


def test_a_bach_score_that_is_not_a_chorale_is_skipped(tmp_path):
    assert load_collection("bach", sources=[corpus_folder() / "bach/bwv846.mxl"], cache_dir=tmp_path) == []


def test_collections_find_their_files():
    assert len(list_sources("bach")) > 400  # 408 .mxl and 2 .xml; 407 are four-part chorales
    assert len(list_sources("palestrina")) > 1000
    assert len(list_sources("monteverdi")) > 40
    assert len(list_sources("essen")) == 31  # files of many tunes each
    with pytest.raises(SettingsError):
        list_sources("mozart")


def test_essen_tunes_from_abc_match_music21(tmp_path):
    import music21

    source = corpus_folder() / "essenFolksong/testd.abc"
    pieces = load_collection("essen", sources=[source], cache_dir=tmp_path)
    opus = music21.converter.parse(source)
    assert len(pieces) == len(opus.scores)
    for piece, tune in zip(pieces, opus.scores):
        assert [t.name for t in piece.score.tracks] == ["melody"]
        expanded = tune.expandRepeats()
        pitches = [p.midi for n in expanded.parts[0].stripTies().flatten().notes for p in n.pitches]
        assert piece.score.tracks[0].notes.pitch.tolist() == pitches
        measures = len(expanded.parts[0].getElementsByClass(music21.stream.Measure))
        assert len(piece.score.bar_lines_tick) - 1 == measures


def test_monteverdi_madrigal_groups_five_voices(tmp_path):
    (piece,) = load_collection("monteverdi", limit=1, cache_dir=tmp_path)
    tracks = piece.score.tracks
    assert [t.name for t in tracks] == list(COLLECTIONS["monteverdi"].track_names)
    means = [float(t.notes.pitch.mean()) for t in tracks]
    assert means == sorted(means, reverse=True)  # highest voice first


def make_score(part_pitches):
    tracks = [
        Track(f"part{i}", 0, False, Notes.from_arrays([p] * 2, [80, 80], [0, 480], [480, 960]))
        for i, p in enumerate(part_pitches)
    ]
    return Score(tracks, TempoMap.constant(120, 480), [TimeSignature(0, 4, 4)], np.array([0, 1920]))


def test_grouping_by_range_by_hand():
    # 5 parts into 4 tracks: ranks 0..4 go to round(r * 3 / 4) = 0, 1, 2, 2, 3.
    grouped = tracks_by_range(make_score([50, 72, 60, 55, 65]), ("s", "a", "t", "b"))
    assert [sorted(set(t.notes.pitch.tolist())) for t in grouped.tracks] == [[72], [65], [55, 60], [50]]
    # 3 parts into 4 tracks: round(r * 3 / 2) = 0, 2, 3: the middle track stays empty.
    grouped = tracks_by_range(make_score([60, 70, 50]), ("s", "a", "t", "b"))
    assert [sorted(set(t.notes.pitch.tolist())) for t in grouped.tracks] == [[70], [], [60], [50]]


def test_merged_unisons_become_valid_midi(tmp_path):
    # Two parts share a track and sing the same pitch in overlapping notes: part 0 at
    # [0, 480) and [480, 960), part 1 at [240, 720) and [960, 1440). Each note ends where the
    # next one of its pitch starts.
    score = make_score([60, 72])
    score.tracks[1].notes = Notes.from_arrays([60, 60], [70, 70], [240, 960], [720, 1440])
    grouped = tracks_by_range(score, ("upper",))
    notes = grouped.tracks[0].notes
    assert list(zip(notes.start_tick.tolist(), notes.end_tick.tolist())) == [(0, 240), (240, 480), (480, 960), (960, 1440)]
    write_midi(grouped, tmp_path / "merged.mid")  # accepted: no overlapping same-pitch notes


def test_stack_bars_keeps_the_notes_of_4_4_pieces(tmp_path):
    sources = [corpus_folder() / PICKUP_CHORALE, corpus_folder() / REPEAT_CHORALE]
    pieces = load_collection("bach", sources=sources, cache_dir=tmp_path)
    bars = stack_bars(pieces, steps_per_beat=4)
    _voices, measures_1 = music21_reading(PICKUP_CHORALE)
    _voices, measures_2 = music21_reading(REPEAT_CHORALE)
    assert bars.shape == (measures_1 + measures_2, 4, 16, 128)
    total = sum(p.score.piano_roll(steps_per_beat=4).velocities.sum() for p in pieces)
    assert bars.sum() == pytest.approx(total, rel=1e-6)
    assert stack_bars(pieces, time_signature=(3, 4)).shape[0] == 0


def test_midi_folder_as_a_corpus(tmp_path):
    (tmp_path / "album" / "disc 2").mkdir(parents=True)
    pieces = load_collection("bach", sources=[corpus_folder() / PICKUP_CHORALE], cache_dir=tmp_path / "cache")
    write_midi(pieces[0].score, tmp_path / "album" / "one.mid")
    write_midi(pieces[0].score, tmp_path / "album" / "disc 2" / "two.MIDI")
    (tmp_path / "album" / "broken.mid").write_bytes(b"MThd\x00\x00")
    (tmp_path / "album" / "cover.jpg").write_bytes(b"not music")
    loaded, errors = load_midi_folder(tmp_path / "album")
    assert [p.name for p in loaded] == ["disc 2/two.MIDI", "one.mid"]
    assert len(errors) == 1 and "broken.mid" in str(errors[0])
    for piece in loaded:
        assert [len(t.notes) for t in piece.score.tracks] == [len(t.notes) for t in pieces[0].score.tracks]
    assert len(load_midi_folder(tmp_path / "album", recursive=False)[0]) == 1
    with pytest.raises(MidiFileError):
        load_midi_folder(tmp_path / "nowhere")
