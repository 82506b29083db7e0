"""Small MIDI files made with mido for the MIDI tests (no tests here), with the notes they hold
listed by hand."""

from __future__ import annotations

from pathlib import Path

import mido

TICKS_PER_BEAT = 480


def events_to_track(events, name=None):
    """A mido track from (absolute tick, message) pairs, in the order given for equal ticks."""
    track = mido.MidiTrack()
    if name is not None:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    previous = 0
    for tick, message in sorted(events, key=lambda event: event[0]):
        track.append(message.copy(time=tick - previous))
        previous = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def note_events(channel, notes):
    """note_on/note_off events for (pitch, velocity, start_tick, end_tick) notes."""
    events = []
    for pitch, velocity, start, end in notes:
        events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        events.append((end, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    return events


# Notes as (pitch, velocity, start_tick, end_tick), on an eighth-note grid (240 ticks).
PIANO_NOTES = [(60, 100, 0, 480), (64, 90, 0, 480), (67, 80, 480, 960), (72, 70, 960, 1920),
               (60, 60, 1920, 2160), (62, 110, 2160, 2400), (64, 50, 2400, 3840), (67, 40, 3840, 4320)]
BASS_NOTES = [(36, 100, 0, 960), (43, 95, 960, 1920), (36, 85, 1920, 3840)]
DRUM_NOTES = [(36, 120, 0, 120), (38, 100, 480, 600), (42, 80, 960, 1080), (36, 120, 1440, 1560)]


def write_band(path: Path, *, tempo_change=True, extras=True) -> Path:
    """A type 1 file: conductor track, piano (ch 1, program 0), bass (ch 2, program 33),
    drums (ch 10). 120 bpm, then 90 bpm from beat 5 if ``tempo_change``; 4/4, then 3/4 from
    tick 3840 (bar 3). With ``extras``: controllers, pitch bend, a mid-track program change,
    lyrics, a marker, text, sysex, key signature, copyright."""
    conductor = [
        (0, mido.MetaMessage("set_tempo", tempo=500000)),
        (0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
        (3840, mido.MetaMessage("time_signature", numerator=3, denominator=4)),
    ]
    if tempo_change:
        conductor.append((1920, mido.MetaMessage("set_tempo", tempo=666667)))
    if extras:
        conductor += [
            (0, mido.MetaMessage("copyright", text="(c) test")),
            (0, mido.MetaMessage("key_signature", key="G")),
            (960, mido.MetaMessage("marker", text="chorus")),
            (0, mido.Message("sysex", data=[0x7E, 0x7F, 0x09, 0x01])),
        ]
    piano = [(0, mido.Message("program_change", channel=0, program=0))] + note_events(0, PIANO_NOTES)
    bass = [(0, mido.Message("program_change", channel=1, program=33))] + note_events(1, BASS_NOTES)
    drums = note_events(9, DRUM_NOTES)
    if extras:
        piano += [
            (0, mido.Message("control_change", channel=0, control=7, value=100)),
            (0, mido.Message("control_change", channel=0, control=64, value=127)),
            (1900, mido.Message("control_change", channel=0, control=64, value=0)),
            (0, mido.MetaMessage("lyrics", text="la")),
            (480, mido.MetaMessage("lyrics", text="li")),
            (700, mido.Message("pitchwheel", channel=0, pitch=1000)),
            (2000, mido.MetaMessage("text", text="a text event")),
        ]
        bass += [(1920, mido.Message("program_change", channel=1, program=34))]
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(events_to_track(conductor, name="Band"))
    midi.tracks.append(events_to_track(piano, name="Piano"))
    midi.tracks.append(events_to_track(bass, name="Bass"))
    midi.tracks.append(events_to_track(drums, name="Drums"))
    midi.save(path)
    return path


def tick_to_seconds_by_hand(tick, tempo_change=True):
    """120 bpm (0.5 s a beat) up to tick 1920, then 90 bpm (2/3 s a beat): by hand."""
    if not tempo_change or tick <= 1920:
        return tick / TICKS_PER_BEAT * 0.5
    return 1920 / TICKS_PER_BEAT * 0.5 + (tick - 1920) / TICKS_PER_BEAT * 0.666667
