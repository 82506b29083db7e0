"""Reading and writing MIDI: notes, tempo, metre, programs and drums survive, and a protected
file (velocities changed, quiet notes added) keeps every other event and reads the same in
mido, pretty_midi, symusic and miditok."""

from __future__ import annotations

import mido
import numpy as np
import pretty_midi
import pytest
import symusic

from harmonycloak.io.midi import read_midi, write_midi
from harmonycloak.music import Notes
from test_midi_helpers import BASS_NOTES, DRUM_NOTES, PIANO_NOTES, tick_to_seconds_by_hand, write_band

EXPECTED = {"Piano": (0, False, PIANO_NOTES), "Bass": (33, False, BASS_NOTES), "Drums": (0, True, DRUM_NOTES)}


def note_tuples(notes: Notes):
    return sorted(zip(notes.pitch.tolist(), notes.velocity.tolist(), notes.start_tick.tolist(), notes.end_tick.tolist()))


def assert_same_music(score, expected=EXPECTED):
    assert {t.name for t in score.tracks} == set(expected)
    for track in score.tracks:
        program, is_drum, notes = expected[track.name]
        assert (track.program, track.is_drum) == (program, is_drum)
        assert note_tuples(track.notes) == sorted(notes)
    assert score.ticks_per_beat == 480
    assert score.tempo_map.change_ticks.tolist() == [0, 1920]
    assert np.round(score.tempo_map.microseconds_per_beat).tolist() == [500000, 666667]
    assert [(ts.tick, ts.numerator, ts.denominator) for ts in score.time_signatures] == [(0, 4, 4), (3840, 3, 4)]


def test_read_gives_the_notes_written_by_hand(tmp_path):
    score = read_midi(write_band(tmp_path / "band.mid"))
    assert_same_music(score)
    assert score.title == "Band"
    piano = next(t for t in score.tracks if t.name == "Piano")
    assert (piano.channel, piano.file_track) == (0, 1)


def test_fresh_write_then_read_keeps_the_music(tmp_path):
    score = read_midi(write_band(tmp_path / "band.mid"))
    score.source_midi = None  # forget the original: write a new file from the notes alone
    assert_same_music(read_midi(write_midi(score, tmp_path / "fresh.mid")))


def test_write_without_changes_gives_the_same_messages(tmp_path):
    original = write_band(tmp_path / "band.mid")
    written = write_midi(read_midi(original), tmp_path / "same.mid")
    assert absolute_messages(written) == absolute_messages(original)


def absolute_messages(path, keep=lambda message: True):
    """Per track chunk, the messages with absolute ticks, as comparable tuples."""
    tracks = []
    for track in mido.MidiFile(path).tracks:
        tick, rows = 0, []
        for message in track:
            tick += message.time
            if keep(message):
                rows.append((tick, str(message.copy(time=0))))
        tracks.append(rows)
    return tracks


def protect_like_a_cloak(score):
    """Lower every velocity by 10 (at least 1) and add one quiet note per melodic track at a
    pitch that track does not play, as the cloak will."""
    protected = score.copy()
    added = {}
    for track in protected.tracks:
        track.notes.velocity[:] = np.maximum(track.notes.velocity - 10, 1)
        if not track.is_drum:
            free_pitch = 100 if track.name == "Piano" else 30
            track.notes = track.notes.added([free_pitch], [5], [240], [720])
            added[track.name] = (free_pitch, 5, 240, 720)
    return protected, added


def expected_after_protection(added):
    expected = {}
    for name, (program, is_drum, notes) in EXPECTED.items():
        changed = [(p, max(v - 10, 1), s, e) for p, v, s, e in notes]
        if name in added:
            changed.append(added[name])
        expected[name] = (program, is_drum, changed)
    return expected


def test_protected_file_keeps_every_other_event(tmp_path):
    original = write_band(tmp_path / "band.mid")
    protected, _added = protect_like_a_cloak(read_midi(original))
    written = write_midi(protected, tmp_path / "protected.mid")
    not_a_note = lambda message: message.type not in ("note_on", "note_off")  # noqa: E731
    assert absolute_messages(written, not_a_note) == absolute_messages(original, not_a_note)


def test_protected_file_reads_the_same_in_our_reader_mido_pretty_midi_and_symusic(tmp_path):
    original = write_band(tmp_path / "band.mid")
    protected, added = protect_like_a_cloak(read_midi(original))
    written = write_midi(protected, tmp_path / "protected.mid")
    expected = expected_after_protection(added)

    assert_same_music(read_midi(written), expected)

    # pretty_midi: notes in seconds, with times worked out by hand from the tempo map.
    # The bass changes program mid-track, so pretty_midi splits it into two instruments.
    midi = pretty_midi.PrettyMIDI(str(written))
    by_name: dict[str, list] = {}
    for instrument in midi.instruments:
        by_name.setdefault(instrument.name, []).extend(
            (n.pitch, n.velocity, round(n.start, 6), round(n.end, 6)) for n in instrument.notes
        )
        assert instrument.is_drum == (instrument.name == "Drums")
    for name, (_program, _drum, notes) in expected.items():
        in_seconds = [(p, v, round(tick_to_seconds_by_hand(s), 6), round(tick_to_seconds_by_hand(e), 6)) for p, v, s, e in notes]
        assert sorted(by_name[name]) == sorted(in_seconds)
    assert [lyric.text for lyric in midi.lyrics] == ["la", "li"]

    # symusic: notes in ticks (it also makes an empty track for the piano's other events).
    sym = symusic.Score(str(written))
    assert sym.ticks_per_quarter == 480
    sym_tracks = [track for track in sym.tracks if len(track.notes)]
    assert sorted(track.name for track in sym_tracks) == sorted(expected)
    for track in sym_tracks:
        program, is_drum, notes = expected[track.name]
        assert (track.program, track.is_drum) == (program, is_drum)
        assert sorted((n.pitch, n.velocity, n.time, n.end) for n in track.notes) == sorted(notes)
    assert [m.text for m in sym.markers] == ["chorus"]
    assert [round(t.qpm, 3) for t in sym.tempos] == [120.0, round(60e6 / 666667, 3)]

    # mido: count note-ons per channel, with the new velocities.
    note_ons = sorted(
        (m.channel, m.note, m.velocity) for m in mido.MidiFile(written).merged_track
        if m.type == "note_on" and m.velocity > 0
    )
    channel_of = {"Piano": 0, "Bass": 1, "Drums": 9}
    assert note_ons == sorted((channel_of[name], p, v) for name, (_, _, notes) in expected.items() for p, v, _s, _e in notes)


def test_protected_file_tokenizes_with_miditok(tmp_path):
    miditok = pytest.importorskip("miditok")
    original = write_band(tmp_path / "band.mid")
    protected, _added = protect_like_a_cloak(read_midi(original))
    written = write_midi(protected, tmp_path / "protected.mid")
    tokenizer = miditok.REMI(miditok.TokenizerConfig(use_programs=True))
    tokens = tokenizer(symusic.Score(str(written)))
    pitches = [t for t in (tokens.tokens if hasattr(tokens, "tokens") else tokens[0].tokens) if t.startswith("Pitch_")]
    assert "Pitch_100" in pitches  # the added quiet note is there for a model to see


def test_removed_and_moved_notes(tmp_path):
    original = write_band(tmp_path / "band.mid", extras=False)
    score = read_midi(original)
    piano = next(t for t in score.tracks if t.name == "Piano")
    keep = piano.notes.pitch != 72  # remove the C5
    piano.notes = Notes(*(getattr(piano.notes, f)[keep] for f in ("pitch", "velocity", "start_tick", "end_tick", "source_on_index", "source_off_index")))
    piano.notes.end_tick[(piano.notes.pitch == 67) & (piano.notes.start_tick == 480)] = 1200  # lengthen a G4
    back = read_midi(write_midi(score, tmp_path / "edited.mid"))
    got = note_tuples(next(t for t in back.tracks if t.name == "Piano").notes)
    wanted = sorted((p, v, s, 1200 if (p, s) == (67, 480) else e) for p, v, s, e in PIANO_NOTES if p != 72)
    assert got == wanted


def test_added_note_over_a_sounding_note_of_the_same_pitch_is_refused(tmp_path):
    score = read_midi(write_band(tmp_path / "band.mid"))
    piano = next(t for t in score.tracks if t.name == "Piano")
    piano.notes = piano.notes.added([72], [5], [1000], [1100])  # inside the C5 at 960-1920
    with pytest.raises(ValueError, match="overlaps"):
        write_midi(score, tmp_path / "bad.mid")
    assert not (tmp_path / "bad.mid").exists()


def test_type_0_file_round_trips(tmp_path):
    band = mido.MidiFile(write_band(tmp_path / "band.mid"))
    single = mido.MidiFile(type=0, ticks_per_beat=480)
    single.tracks.append(mido.merge_tracks(band.tracks))
    single.save(tmp_path / "type0.mid")
    score = read_midi(tmp_path / "type0.mid")
    assert sorted(t.channel for t in score.tracks) == [0, 1, 9]
    by_channel = {t.channel: note_tuples(t.notes) for t in score.tracks}
    assert by_channel == {0: sorted(PIANO_NOTES), 1: sorted(BASS_NOTES), 9: sorted(DRUM_NOTES)}
    protected, _added = protect_like_a_cloak(score)
    back = read_midi(write_midi(protected, tmp_path / "type0-protected.mid"))
    assert mido.MidiFile(tmp_path / "type0-protected.mid").type == 0
    assert sorted(len(t.notes) for t in back.tracks) == sorted([len(PIANO_NOTES) + 1, len(BASS_NOTES) + 1, len(DRUM_NOTES)])
