"""The piano roll, bars and tempo map, checked against pretty_midi and muspy (independent
implementations) and against values worked out by hand."""

from __future__ import annotations

import mido
import numpy as np
import pretty_midi
import pytest

from harmonycloak.errors import SettingsError
from harmonycloak.io.midi import read_midi, read_musicxml, write_midi
from harmonycloak.music import TempoMap
from test_midi_helpers import BASS_NOTES, PIANO_NOTES, TICKS_PER_BEAT, tick_to_seconds_by_hand, write_band

CHORALE = "bach/bwv1.6.mxl"  # 4/4 with a one-beat pickup, plus a horn part


def corpus_file(relative):
    import music21
    from pathlib import Path

    return Path(music21.__file__).parent / "corpus" / relative


def test_piano_roll_matches_pretty_midi_per_instrument(tmp_path):
    # Constant 120 bpm: at 4 steps per beat a step is 1/8 s, so pretty_midi at fs=8 samples the
    # same grid; every note starts and ends on an eighth (2 steps), so no rounding differs.
    path = write_band(tmp_path / "band.mid", tempo_change=False, extras=False)
    roll = read_midi(path).piano_roll(steps_per_beat=4)
    assert roll.velocities.dtype == np.float32 and roll.velocities.shape[2] == 128
    midi = pretty_midi.PrettyMIDI(str(path))
    compared = 0
    for instrument in midi.instruments:
        if instrument.is_drum:
            continue  # pretty_midi leaves drums out of its piano roll
        track = roll.track_names.index(instrument.name)
        reference = instrument.get_piano_roll(fs=8, pedal_threshold=None).T  # (steps, 128)
        ours = roll.velocities[track, : reference.shape[0]] * 127
        np.testing.assert_allclose(ours, reference, atol=1e-3)
        assert not ours[reference.shape[0]:].any()
        compared += 1
    assert compared == 2


def test_piano_roll_cells_by_hand():
    from harmonycloak.music import Notes, Score, TimeSignature, Track

    notes = Notes.from_arrays([60, 60, 64], [127, 50, 100], [0, 120, 100], [240, 130, 101])
    score = Score([Track("t", 0, False, notes)], TempoMap.constant(120, 480), [TimeSignature(0, 4, 4)], np.array([0, 1920]))
    roll = score.piano_roll(steps_per_beat=4)  # a step is 120 ticks
    assert roll.velocities.shape == (1, 16, 128)
    assert roll.velocities[0, :2, 60].tolist() == [1.0, 1.0]  # the louder of two overlapping notes
    # a 1-tick note at tick 100 rounds to step 1 and still lasts one step
    assert roll.velocities[0, :, 64].nonzero()[0].tolist() == [1]
    assert roll.velocities[0, 1, 64] == pytest.approx(100 / 127)


def test_piano_roll_of_a_chorale_matches_muspy():
    import muspy

    path = corpus_file(CHORALE)
    score = read_musicxml(path)
    music = muspy.read_musicxml(path)
    # One step per tick, so both rolls sample the same grid.
    roll = score.piano_roll(steps_per_beat=score.ticks_per_beat)
    for index, track in enumerate(music.tracks):
        single = muspy.Music(resolution=music.resolution, tracks=[track])
        reference = muspy.to_pianoroll_representation(single, encode_velocity=True)  # (time, 128)
        ours = np.rint(roll.velocities[index] * 127)
        length = reference.shape[0]
        np.testing.assert_array_equal(ours[:length], reference)
        assert not ours[length:].any()


def test_piano_roll_of_a_chorale_matches_pretty_midi(tmp_path):
    # Steps count beats, not seconds, so the roll does not depend on the tempo: written at
    # 120 bpm, a step at 4 steps per beat is exactly 1/8 s and pretty_midi at fs=8 samples the
    # same grid.
    score = read_musicxml(corpus_file(CHORALE))
    roll = score.piano_roll(steps_per_beat=4)
    score.tempo_map = TempoMap.constant(120, score.ticks_per_beat)
    midi = pretty_midi.PrettyMIDI(str(write_midi(score, tmp_path / "chorale.mid")))
    assert [instrument.name for instrument in midi.instruments] == roll.track_names
    for index, instrument in enumerate(midi.instruments):
        reference = instrument.get_piano_roll(fs=8, pedal_threshold=None).T
        ours = roll.velocities[index, : reference.shape[0]] * 127
        np.testing.assert_allclose(ours, reference, atol=1e-3)
        assert not ours[reference.shape[0]:].any()


def test_bars_of_a_chorale_follow_music21_measures():
    import music21

    path = corpus_file(CHORALE)
    roll = read_musicxml(path).piano_roll(steps_per_beat=4)
    parsed = music21.converter.parse(path).expandRepeats()
    soprano = next(p for p in parsed.parts if p.partName == "Soprano").stripTies()
    measures = list(soprano.getElementsByClass(music21.stream.Measure))
    bars = roll.bars(steps_per_bar=16)
    assert bars.shape == (5, len(measures), 16, 128)
    track = roll.track_names.index("Soprano")
    for bar, measure in enumerate(measures):
        pickup_shift = 4 - measure.duration.quarterLength if bar == 0 else 0  # right-aligned
        for note in measure.notes:
            step = int((note.offset + pickup_shift) * 4)
            assert bars[track, bar, step, note.pitch.midi] > 0, (bar, note)
    # Cutting into bars loses nothing: every sounding cell of the roll is in some bar.
    assert bars.sum() == pytest.approx(roll.velocities.sum(), rel=1e-6)


def test_bar_lines_of_a_midi_file_match_pretty_midi_downbeats(tmp_path):
    path = write_band(tmp_path / "band.mid")  # 4/4 for two bars, then 3/4; 120 then 90 bpm
    score = read_midi(path)
    downbeats_s = pretty_midi.PrettyMIDI(str(path)).get_downbeats()
    ours_s = score.tempo_map.tick_to_seconds(score.bar_lines_tick[:-1])
    assert score.bar_lines_tick.tolist() == [0, 1920, 3840, 5280]  # by hand: 4/4, 4/4, 3/4
    np.testing.assert_allclose(ours_s, downbeats_s[: len(ours_s)], atol=1e-6)
    bars = score.piano_roll(steps_per_beat=4).bars()
    assert bars.shape == (3, 3, 16, 128)
    assert not bars[:, 2, 12:].any()  # the 3/4 bar is padded at the end


def test_bars_refuse_a_slot_shorter_than_a_bar(tmp_path):
    roll = read_midi(write_band(tmp_path / "band.mid")).piano_roll(steps_per_beat=4)
    with pytest.raises(SettingsError, match="steps_per_bar"):
        roll.bars(steps_per_bar=12)


def test_tempo_map_against_pretty_midi_and_by_hand(tmp_path):
    path = write_band(tmp_path / "band.mid")
    score = read_midi(path)
    ticks = np.arange(0, 6000, 37)
    midi = pretty_midi.PrettyMIDI(str(path))
    reference = np.array([midi.tick_to_time(int(t)) for t in ticks])
    np.testing.assert_allclose(score.tempo_map.tick_to_seconds(ticks), reference, atol=1e-9)
    by_hand = np.array([tick_to_seconds_by_hand(t) for t in ticks])
    np.testing.assert_allclose(score.tempo_map.tick_to_seconds(ticks), by_hand, atol=1e-9)
    np.testing.assert_allclose(score.tempo_map.seconds_to_tick(by_hand), ticks, atol=1e-6)


def test_seconds_and_steps_convert_through_the_tempo_map(tmp_path):
    roll = read_midi(write_band(tmp_path / "band.mid")).piano_roll(steps_per_beat=24)
    # By hand: 8 steps at 120 bpm = 1/3 beat = 1/6 s; step 96 (tick 1920) is at 2 s, and 24
    # steps later (one beat at 90 bpm) 2.666667 s.
    assert roll.step_to_seconds(8) == pytest.approx(1 / 6)
    assert roll.step_to_seconds(96) == pytest.approx(2.0)
    assert roll.step_to_seconds(120) == pytest.approx(2.666667)
    windows_s = np.arange(0, 5, 0.01)  # the cloak's 10 ms windows
    np.testing.assert_allclose(roll.step_to_seconds(roll.seconds_to_step(windows_s)), windows_s, atol=1e-9)
    assert np.all(np.diff(roll.seconds_to_step(windows_s)) > 0)


def test_tempo_changes_at_one_tick_keep_the_last():
    tempo_map = TempoMap.from_changes(480, [(0, 500000), (0, 1000000), (960, 250000)])
    assert tempo_map.bpm.tolist() == [60.0, 240.0]
    assert tempo_map.tick_to_seconds(960) == pytest.approx(2.0)


def test_notes_in_seconds_match_mido_playback_times(tmp_path):
    # mido's own iteration yields messages with delta seconds, from its tempo handling.
    path = write_band(tmp_path / "band.mid", extras=False)
    score = read_midi(path)
    elapsed, starts = 0.0, []
    for message in mido.MidiFile(path):
        elapsed += message.time
        if message.type == "note_on" and message.velocity > 0 and message.channel in (0, 1):
            starts.append(round(elapsed, 6))
    ours = [
        round(float(s), 6)
        for track in score.tracks if track.channel in (0, 1)
        for s in score.tempo_map.tick_to_seconds(track.notes.start_tick)
    ]
    assert sorted(ours) == sorted(starts)
    assert len(ours) == len(PIANO_NOTES) + len(BASS_NOTES)
    assert TICKS_PER_BEAT == score.ticks_per_beat


@pytest.mark.parametrize("restated_at, bar_lines", [(1920, [0, 1920, 3840]), (1000, [0, 1000, 2920, 4840])])
def test_a_restated_time_signature_starts_a_bar_only_off_the_grid(tmp_path, restated_at, bar_lines):
    from test_midi_helpers import events_to_track, note_events

    events = [
        (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        (restated_at, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
    ] + note_events(0, [(60, 80, 0, 3000)])
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(events_to_track(events))
    midi.save(tmp_path / "restated.mid")
    score = read_midi(tmp_path / "restated.mid")
    assert score.bar_lines_tick.tolist() == bar_lines
    assert len(score.time_signatures) == (1 if restated_at == 1920 else 2)
    downbeats = pretty_midi.PrettyMIDI(str(tmp_path / "restated.mid")).get_downbeats()
    np.testing.assert_allclose(score.tempo_map.tick_to_seconds(score.bar_lines_tick[:-1]), downbeats[: len(bar_lines) - 1])
