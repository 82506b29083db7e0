"""Read and write MIDI files, and read MusicXML, as `Score`s.

Which library, and why:

- **mido** reads and writes the MIDI file. It is low level: it gives every message of every
  track chunk, in order, and writes them back byte for byte. That is what protection needs.
  `read_midi` remembers for each note which note-on and note-off message it came from, and
  `write_midi` writes the *original* messages again with only the notes changed (velocities
  edited in place, notes added or removed), so controllers, program changes, the tempo map,
  lyrics, markers, system exclusive and any other event are kept exactly. pretty_midi and
  symusic rebuild a file from their own model of it and drop what their model lacks (for
  instance sysex, or program changes in the middle of a track), so they cannot do this.
- **symusic** (fast C++, keeps ticks) and **pretty_midi** (the common reference) are used in
  the tests as independent readers of what we write, as is miditok by the models later.
- **muspy** reads MusicXML: about ten times faster than music21's parser, and it expands
  repeats the way a player would.

Pairing note-on and note-off messages into notes is written here (a few lines) because no
library reports which messages a note came from. It pairs first-in first-out per (track chunk,
channel, pitch), as symusic does. Readers disagree only on overlapping notes of the same pitch
on one channel; `write_midi` refuses to add such notes, so what it writes reads the same
everywhere.

How protection edits a file::

    score = read_midi("song.mid")
    protected = score.copy()
    notes = protected.tracks[0].notes
    notes.velocity[:] = new_velocities                      # int, 1-127, one per note
    protected.tracks[0].notes = notes.added(pitch, velocity, start_tick, end_tick)
    write_midi(protected, "song.protected.mid")             # the original + these changes

Validation (each raises `MidiFileError` naming the file): not a MIDI file, damaged or cut-short
data, type 2 files and SMPTE time, no notes, a tempo outside `MIN_TEMPO_BPM`-`MAX_TEMPO_BPM`,
an impossible time signature, notes on more than `MAX_CHANNELS` (port, channel) pairs, music
longer than `MAX_BEATS`.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from collections import defaultdict, deque
from pathlib import Path

import mido
import numpy as np

from harmonycloak.errors import MidiFileError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".musicxml", ".xml", ".mxl")

MIN_TEMPO_BPM = 10.0
"""Slowest tempo accepted. Metronome markings run 40-208 bpm, and tempo maps stretch fermatas
and ritardandi to a quarter of that; below 10 bpm one beat lasts over 6 s, which marks a
damaged or deliberately obfuscated file rather than music."""

MAX_TEMPO_BPM = 1000.0
"""Fastest tempo accepted. Sequencers write double or quadruple tempo (an eighth or a 16th as
the beat), so 400-900 bpm occurs in real files; above 1000 bpm a beat lasts under 60 ms."""

MAX_CHANNELS = 16
"""A MIDI port addresses 16 channels, and a General MIDI synthesiser (FluidSynth, which renders
our MIDI to audio) plays one port. A file whose notes use more than 16 distinct (port, channel)
pairs, through the MIDI port meta event, would be played with parts merged."""

MAX_BEATS = 100_000
"""Longest music accepted, in quarter notes: about 14 hours at 120 bpm. A damaged
variable-length delta time can put a note 2^28 ticks away; a piano roll of that would not fit
in memory."""

DRUM_CHANNEL = 9  # MIDI channel 10, counted from 0


# ------------------------------------------------------------------------------------------
# Reading MIDI
# ------------------------------------------------------------------------------------------


def read_midi(path: str | Path) -> Score:
    """Read a Standard MIDI File (.mid, .midi; type 0 or 1) into a `Score`.

    Each (track chunk, channel) that plays notes becomes one `Track`, in file order. Tempo
    and time-signature events are taken from every track chunk. Bar lines follow the time
    signatures (4/4 before the first one, as the MIDI standard says).

    Raises:
        MidiFileError: the file cannot be read, is not MIDI, is damaged, or holds nothing
            to protect (see the module docstring for the list).
    """
    path = Path(path)
    data = _read_bytes(path)
    midi_file = _parse_midi_bytes(data, path)
    scan = _scan_messages(midi_file)

    if not any(len(notes) for notes in scan.notes.values()):
        raise MidiFileError("holds no notes (nothing to play or protect)", path)
    channels = {(scan.ports[file_track], channel) for file_track, channel in scan.notes}
    if len(channels) > MAX_CHANNELS:
        raise MidiFileError(
            f"plays notes on {len(channels)} MIDI channels; a MIDI port has {MAX_CHANNELS}, "
            "so a synthesiser would merge parts",
            path,
        )

    tracks = []
    for (file_track, channel), notes in sorted(scan.notes.items()):
        tracks.append(
            Track(
                name=scan.names[file_track],
                program=scan.programs[(file_track, channel)],
                is_drum=channel == DRUM_CHANNEL,
                notes=notes,
                channel=channel,
                file_track=file_track,
                port=scan.ports[file_track],
            )
        )
    tempo_map = TempoMap.from_changes(midi_file.ticks_per_beat, scan.tempos)
    time_signatures = sorted_time_signatures(scan.time_signatures, midi_file.ticks_per_beat)
    end_tick = max(int(track.notes.end_tick.max(initial=0)) for track in tracks)
    check_timing(tempo_map, time_signatures, end_tick, path)
    # In a type 1 file the name of a first chunk without notes is, by convention, the title.
    plays_notes = {track.file_track for track in tracks}
    title = scan.names[0] if midi_file.type == 1 and 0 not in plays_notes else ""
    return Score(
        tracks=tracks,
        tempo_map=tempo_map,
        time_signatures=time_signatures,
        bar_lines_tick=bar_lines_from_time_signatures(time_signatures, tempo_map.ticks_per_beat, end_tick),
        source_path=path,
        source_format="midi",
        source_midi=data,
        title=title,
    )


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MidiFileError("does not exist", path) from None
    except IsADirectoryError:
        raise MidiFileError("is a folder, not a MIDI file", path) from None
    except OSError as error:
        raise MidiFileError(f"cannot be read ({error.strerror or error})", path) from None
    if not data:
        raise MidiFileError("is empty", path)
    return data


def _parse_midi_bytes(data: bytes, path: Path) -> mido.MidiFile:
    """Parse with mido, turning every way a file can be broken into one `MidiFileError`."""
    if not data.startswith(b"MThd"):
        raise MidiFileError("is not a MIDI file (it does not start with the MIDI header)", path)
    try:
        midi_file = mido.MidiFile(file=io.BytesIO(data))
    except EOFError:
        raise MidiFileError("is cut short: the MIDI data ends in the middle of a track", path) from None
    except Exception as error:  # mido raises OSError, ValueError, KeyError... on bad data
        raise MidiFileError(f"is damaged and cannot be read as MIDI ({error})", path) from None
    if midi_file.type == 2:
        raise MidiFileError(
            "is a type 2 MIDI file (independent sequences), which is not supported; "
            "save it as type 1",
            path,
        )
    if midi_file.ticks_per_beat <= 0:  # the top bit of the division marks SMPTE time code
        raise MidiFileError("counts time in SMPTE frames, not beats, which is not supported", path)
    if not midi_file.tracks:
        raise MidiFileError("has no tracks", path)
    return midi_file


class _Scan:
    """What one pass over a MIDI file's messages finds."""

    def __init__(self) -> None:
        self.notes: dict[tuple[int, int], Notes] = {}  # (file_track, channel) -> notes
        self.programs: dict[tuple[int, int], int] = {}
        self.names: list[str] = []
        self.ports: list[int] = []
        self.tempos: list[tuple[int, float]] = []
        self.time_signatures: list[tuple[int, int, int]] = []
        self.track_end_ticks: list[int] = []


def _scan_messages(midi_file: mido.MidiFile) -> _Scan:
    """Pair notes and collect names, ports, programs, tempos and time signatures."""
    scan = _Scan()
    channel_program = [0] * 16  # latest program per channel, across track chunks
    for file_track, messages in enumerate(midi_file.tracks):
        tick = 0
        name = ""
        port = None
        program = {}  # channel -> program, within this track chunk
        first_program: dict[int, int] = {}
        open_notes: dict[tuple[int, int], deque] = defaultdict(deque)
        columns: dict[int, list[list[int]]] = defaultdict(lambda: [[], [], [], [], [], []])
        for index, message in enumerate(messages):
            tick += message.time
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                key = (message.channel, message.note)
                open_notes[key].append((tick, message.velocity, index))
                if message.channel not in first_program:
                    first_program[message.channel] = program.get(
                        message.channel, channel_program[message.channel]
                    )
            elif kind == "note_off" or kind == "note_on":
                queue = open_notes.get((message.channel, message.note))
                if queue:  # a note-off with no note sounding is ignored (kept in the file)
                    start, velocity, on_index = queue.popleft()
                    _append_note(columns[message.channel], message.note, velocity, start, tick, on_index, index)
            elif kind == "program_change":
                program[message.channel] = message.program
                channel_program[message.channel] = message.program
            elif kind == "set_tempo":
                scan.tempos.append((tick, message.tempo))
            elif kind == "time_signature":
                scan.time_signatures.append((tick, message.numerator, message.denominator))
            elif kind == "track_name" and not name:
                name = message.name
            elif kind == "midi_port" and port is None:
                port = message.port
        for (channel, pitch), queue in open_notes.items():
            for start, velocity, on_index in queue:  # never ended: ends with its track
                _append_note(columns[channel], pitch, velocity, start, tick, on_index, -1)
        for channel, (pitch, velocity, start, end, on_index, off_index) in columns.items():
            scan.notes[(file_track, channel)] = Notes.from_arrays(
                pitch, velocity, start, end, on_index, off_index
            )
            scan.programs[(file_track, channel)] = first_program.get(channel, 0)
        scan.names.append(name.strip())
        scan.ports.append(port or 0)
        scan.track_end_ticks.append(tick)
    return scan


def _append_note(columns, pitch, velocity, start, end, on_index, off_index) -> None:
    for column, value in zip(columns, (pitch, velocity, start, end, on_index, off_index)):
        column.append(value)


def sorted_time_signatures(changes: list[tuple[int, int, int]], ticks_per_beat: int) -> list[TimeSignature]:
    """Sorted, one per tick (the last wins), with 4/4 at tick 0 if nothing is there.

    A signature that repeats the one in force on one of its bar lines (scores restate the
    metre after a repeat or a page turn) says nothing new and is dropped; repeated off the bar
    grid it starts a new bar, as a MIDI player takes it, and is kept.
    """
    by_tick = {}
    for tick, numerator, denominator in sorted(changes, key=lambda change: change[0]):
        by_tick[int(tick)] = TimeSignature(int(tick), int(numerator), int(denominator))
    if 0 not in by_tick:
        by_tick[0] = TimeSignature(0, 4, 4)
    kept: list[TimeSignature] = []
    for tick in sorted(by_tick):
        signature = by_tick[tick]
        if kept and (signature.numerator, signature.denominator) == (kept[-1].numerator, kept[-1].denominator):
            bar_ticks = max(1, round(kept[-1].quarters_per_bar * ticks_per_beat))
            if (tick - kept[-1].tick) % bar_ticks == 0:
                continue
        kept.append(signature)
    return kept


def check_timing(
    tempo_map: TempoMap, time_signatures: list[TimeSignature], end_tick: int, path: Path | None
) -> None:
    """Raise `MidiFileError` for an absurd tempo, time signature or length."""
    for tick, microseconds in zip(tempo_map.change_ticks, tempo_map.microseconds_per_beat):
        bpm = 60e6 / microseconds if microseconds > 0 else float("inf")  # 0: infinitely fast
        if not MIN_TEMPO_BPM <= bpm <= MAX_TEMPO_BPM:
            beat = int(tick) // tempo_map.ticks_per_beat + 1
            raise MidiFileError(
                f"sets a tempo of {bpm:.3g} bpm at beat {beat}; music lies between "
                f"{MIN_TEMPO_BPM:g} and {MAX_TEMPO_BPM:g} bpm, so the file is damaged",
                path,
            )
    for signature in time_signatures:
        denominator = signature.denominator
        if signature.numerator < 1 or denominator < 1 or denominator > 128 or denominator & (denominator - 1):
            raise MidiFileError(
                f"has an impossible time signature {signature.numerator}/{denominator}", path
            )
    beats = end_tick / tempo_map.ticks_per_beat
    if beats > MAX_BEATS:
        raise MidiFileError(
            f"lasts {beats:.0f} beats, more than the {MAX_BEATS} a piece of music could; "
            "its timing is damaged",
            path,
        )


def bar_lines_from_time_signatures(
    time_signatures: list[TimeSignature], ticks_per_beat: int, end_tick: int
) -> np.ndarray:
    """Bar lines implied by time signatures, as for a MIDI file (which has none).

    Bars of each signature repeat from its tick; a signature that arrives mid-bar cuts that
    bar short. Bars cover ``[0, end_tick)``, and there is at least one.

    Returns:
        int64, shape (bars + 1,): start tick of each bar, then the end of the last one.
    """
    starts: list[int] = []
    ends: list[int] = []
    for index, signature in enumerate(time_signatures):
        next_tick = time_signatures[index + 1].tick if index + 1 < len(time_signatures) else None
        bar_ticks = max(1, round(signature.quarters_per_bar * ticks_per_beat))
        tick = signature.tick
        while (next_tick is None or tick < next_tick) and (tick < end_tick or not starts):
            starts.append(tick)
            ends.append(tick + bar_ticks if next_tick is None else min(tick + bar_ticks, next_tick))
            tick += bar_ticks
        if next_tick is not None and next_tick >= end_tick and starts:
            break
    return np.asarray(starts + ends[-1:], dtype=np.int64)


# ------------------------------------------------------------------------------------------
# Writing MIDI
# ------------------------------------------------------------------------------------------


def write_midi(score: Score, path: str | Path) -> Path:
    """Write ``score`` as a Standard MIDI File, atomically.

    If the score was read from a MIDI file (``score.source_midi``), that file is written
    again with only the notes changed: a note whose pitch and timing are unchanged keeps its
    messages, with the new velocity; a note that moved, or has no source messages, is written
    as a new note-on/note-off pair in its track chunk (a note-off goes before, a note-on after
    the original events at the same tick); a source note that is no longer in the score is
    removed. Every other message is kept as it was. A `Track` without ``file_track`` becomes a
    new track chunk (type 1 files only).

    Otherwise a new type 1 file is made: a first track with the title, tempo map and time
    signatures, then one track per `Track` with its name, program and notes. Tracks without a
    channel get the free channels in turn (10 is kept for drums).

    The file is written to a temporary file in the same folder and renamed into place, so a
    failure leaves nothing behind and never a half-written file.

    Raises:
        ValueError: a note is not valid MIDI (pitch outside 0-127, velocity outside 1-127,
            end before start), or a new note overlaps a note of the same pitch on the same
            channel (readers would pair their messages differently).
        MidiFileError: the file cannot be written (folder missing, no permission, disk full),
            or the score has more melodic tracks than there are channels.
    """
    path = Path(path)
    for track in score.tracks:
        _check_notes(track)
    if score.source_midi is not None:
        midi_file = _edited_midi(score, path)
    else:
        midi_file = _new_midi(score, path)
    buffer = io.BytesIO()
    midi_file.save(file=buffer)
    _write_atomic(path, buffer.getvalue())
    return path


def as_type_1(data: bytes) -> bytes:
    """A type 0 MIDI file as the equivalent type 1 file (its one track chunk, unchanged), so that
    `write_midi` can add track chunks to it; other files are returned as they are."""
    midi_file = mido.MidiFile(file=io.BytesIO(data))
    if midi_file.type != 0:
        return data
    midi_file.type = 1
    buffer = io.BytesIO()
    midi_file.save(file=buffer)
    return buffer.getvalue()


def _check_notes(track: Track) -> None:
    notes = track.notes
    if len(notes) == 0:
        return
    if notes.pitch.min() < 0 or notes.pitch.max() > 127:
        raise ValueError(f"track {track.name!r}: a pitch is outside 0-127")
    if notes.velocity.min() < 1 or notes.velocity.max() > 127:
        raise ValueError(f"track {track.name!r}: a velocity is outside 1-127 (0 would end the note)")
    if (notes.end_tick < notes.start_tick).any() or notes.start_tick.min() < 0:
        raise ValueError(f"track {track.name!r}: a note ends before it starts or starts before 0")
    if track.channel is not None and not 0 <= track.channel <= 15:
        raise ValueError(f"track {track.name!r}: channel {track.channel} is outside 0-15")


def _edited_midi(score: Score, path: Path) -> mido.MidiFile:
    """The source MIDI file with the score's notes in place of its own."""
    source = mido.MidiFile(file=io.BytesIO(score.source_midi))
    original = _scan_messages(source)
    # (file_track, on_index) -> (channel, pitch, start, end, off_index) of the source notes
    source_notes = {}
    for (file_track, channel), notes in original.notes.items():
        for pitch, start, end, on_index, off_index in zip(
            notes.pitch, notes.start_tick, notes.end_tick, notes.source_on_index, notes.source_off_index
        ):
            source_notes[(file_track, int(on_index))] = (channel, int(pitch), int(start), int(end), int(off_index))

    kept: set[tuple[int, int]] = set()
    velocity_edits: dict[tuple[int, int], int] = {}
    added: dict[int, list[tuple[int, int, int, int, int]]] = defaultdict(list)  # file_track -> notes
    new_chunks: list[Track] = []
    for track in score.tracks:
        if track.file_track is None:
            new_chunks.append(track)
            continue
        if not 0 <= track.file_track < len(source.tracks) or track.channel is None:
            raise ValueError(f"track {track.name!r} names no track chunk and channel of the source file")
        notes = track.notes
        for pitch, velocity, start, end, on_index in zip(
            notes.pitch, notes.velocity, notes.start_tick, notes.end_tick, notes.source_on_index
        ):
            key = (track.file_track, int(on_index))
            source_note = source_notes.get(key) if on_index >= 0 else None
            same_place = source_note is not None and source_note[:4] == (
                track.channel, int(pitch), int(start), int(end)
            )
            if same_place:
                if key in kept:
                    raise ValueError(f"track {track.name!r}: two notes claim one note-on of the file")
                kept.add(key)
                velocity_edits[key] = int(velocity)
            else:
                added[track.file_track].append((track.channel, int(pitch), int(velocity), int(start), int(end)))

    removed: set[tuple[int, int]] = set()
    for key, (_channel, _pitch, _start, _end, off_index) in source_notes.items():
        if key not in kept:
            removed.add(key)
            if off_index >= 0:
                removed.add((key[0], off_index))

    _check_added_overlaps(source_notes, kept, added, path)
    if new_chunks and source.type == 0:
        raise ValueError("a type 0 MIDI file has one track chunk; new tracks cannot be added to it")

    for file_track, messages in enumerate(source.tracks):
        source.tracks[file_track] = _rebuild_track(
            messages, file_track, velocity_edits, removed, added.get(file_track, [])
        )
    used = {track.channel for track in score.tracks if track.channel is not None}
    for track in new_chunks:
        channel = track.channel if track.channel is not None else _free_channel(used, track.is_drum, path)
        used.add(channel)
        source.tracks.append(_new_track(track, channel))
    return source


def _check_added_overlaps(source_notes, kept, added, path: Path) -> None:
    """Refuse new notes that overlap a kept or new note of the same pitch on one channel."""
    intervals: dict[tuple[int, int, int], list[tuple[int, int, bool]]] = defaultdict(list)
    for (file_track, _on), (channel, pitch, start, end, _off) in source_notes.items():
        if (file_track, _on) in kept:
            intervals[(file_track, channel, pitch)].append((start, end, False))
    for file_track, notes in added.items():
        for channel, pitch, _velocity, start, end in notes:
            intervals[(file_track, channel, pitch)].append((start, end, True))
    for (file_track, channel, pitch), spans in intervals.items():
        if not any(new for _s, _e, new in spans):
            continue
        spans.sort()
        for (start_a, end_a, new_a), (start_b, _end_b, new_b) in zip(spans, spans[1:]):
            if (new_a or new_b) and (start_b < end_a or start_b == start_a):
                raise ValueError(
                    f"{path}: a new note of pitch {pitch} at tick {start_b} overlaps another of "
                    f"the same pitch on channel {channel + 1} of track chunk {file_track}"
                )


def _rebuild_track(messages, file_track, velocity_edits, removed, added) -> mido.MidiTrack:
    """One track chunk with notes edited, removed and added; delta times recomputed."""
    # Sort key (tick, rank, order): new note-offs first at their tick (rank 0), then the
    # original events in their order (rank 1), then new note-ons (rank 2), then the note-offs
    # of new notes of zero length (rank 3, after their own note-on), end of track last.
    events = []
    tick = 0
    end_of_track = None
    for index, message in enumerate(messages):
        tick += message.time
        if (file_track, index) in removed:
            continue
        if message.type == "end_of_track":
            end_of_track = (tick, message)
            continue
        new_velocity = velocity_edits.get((file_track, index))
        if new_velocity is not None and new_velocity != message.velocity:
            message = message.copy(velocity=new_velocity)
        events.append((tick, 1, index, message))
    for order, (channel, pitch, velocity, start, end) in enumerate(added):
        events.append((start, 2, order, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
        rank = 3 if end == start else 0
        events.append((end, rank, order, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    events.sort(key=lambda event: event[:3])
    last_tick = max([event[0] for event in events], default=0)
    if end_of_track is None:
        end_of_track = (last_tick, mido.MetaMessage("end_of_track"))
    events.append((max(end_of_track[0], last_tick), 4, 0, end_of_track[1]))

    track = mido.MidiTrack()
    previous = 0
    for tick, _rank, _order, message in events:
        track.append(message.copy(time=tick - previous))
        previous = tick
    return track


def _free_channel(used: set[int], is_drum: bool, path: Path) -> int:
    if is_drum:
        return DRUM_CHANNEL
    for channel in range(16):
        if channel != DRUM_CHANNEL and channel not in used:
            return channel
    raise MidiFileError(
        "cannot be written: the score has more melodic tracks than the 15 MIDI channels "
        "(channel 10 is for drums)",
        path,
    )


def _new_track(track: Track, channel: int) -> mido.MidiTrack:
    """A track chunk with a track's name, program and notes."""
    events = []
    for order, (pitch, velocity, start, end) in enumerate(
        zip(track.notes.pitch, track.notes.velocity, track.notes.start_tick, track.notes.end_tick)
    ):
        # Note-offs before note-ons at one tick, except the note-off of a zero-length note.
        rank = 2 if end == start else 0
        events.append((int(start), 1, order, mido.Message("note_on", channel=channel, note=int(pitch), velocity=int(velocity))))
        events.append((int(end), rank, order, mido.Message("note_off", channel=channel, note=int(pitch), velocity=0)))
    events.sort(key=lambda event: event[:3])
    messages = mido.MidiTrack()
    if track.name:
        messages.append(mido.MetaMessage("track_name", name=track.name))
    messages.append(mido.Message("program_change", channel=channel, program=int(track.program)))
    previous = 0
    for tick, _rank, _order, message in events:
        messages.append(message.copy(time=tick - previous))
        previous = tick
    messages.append(mido.MetaMessage("end_of_track", time=0))
    return messages


def _new_midi(score: Score, path: Path) -> mido.MidiFile:
    """A new type 1 file: a conductor track, then one track chunk per `Track`."""
    ticks_per_beat = score.ticks_per_beat
    if not 1 <= ticks_per_beat <= 0x7FFF:
        raise ValueError(f"ticks_per_beat {ticks_per_beat} does not fit a MIDI file (1-32767)")
    for track in score.tracks:
        _check_same_pitch_overlaps(track, path)
    conductor = []
    for tick, us in zip(score.tempo_map.change_ticks, score.tempo_map.microseconds_per_beat):
        conductor.append((int(tick), mido.MetaMessage("set_tempo", tempo=int(round(us)))))
    for signature in score.time_signatures:
        conductor.append((signature.tick, mido.MetaMessage(
            "time_signature", numerator=signature.numerator, denominator=signature.denominator
        )))
    conductor.sort(key=lambda event: event[0])
    first = mido.MidiTrack()
    if score.title:
        first.append(mido.MetaMessage("track_name", name=score.title))
    previous = 0
    for tick, message in conductor:
        first.append(message.copy(time=tick - previous))
        previous = tick
    first.append(mido.MetaMessage("end_of_track", time=0))

    midi_file = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    midi_file.tracks.append(first)
    used = {track.channel for track in score.tracks if track.channel is not None}
    for track in score.tracks:
        channel = track.channel
        if channel is None:
            channel = _free_channel(used, track.is_drum, path)
            used.add(channel)
        midi_file.tracks.append(_new_track(track, channel))
    return midi_file


def _check_same_pitch_overlaps(track: Track, path: Path) -> None:
    notes = track.notes
    for pitch in np.unique(notes.pitch):
        mask = notes.pitch == pitch
        starts, ends = notes.start_tick[mask], notes.end_tick[mask]  # sorted by start
        clash = np.flatnonzero((starts[1:] < ends[:-1]) | (starts[1:] == starts[:-1]))
        if len(clash):
            raise ValueError(
                f"{path}: track {track.name!r} has overlapping notes of pitch {int(pitch)} at "
                f"tick {int(starts[clash[0] + 1])}; readers would pair their messages differently"
            )


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    try:
        with atomic_output(path, MidiFileError) as temporary:
            temporary.write_bytes(data)
    except OSError as error:
        raise MidiFileError(f"cannot be written ({error.strerror or error})", path) from None


# ------------------------------------------------------------------------------------------
# Reading MusicXML
# ------------------------------------------------------------------------------------------


def read_musicxml(path: str | Path) -> Score:
    """Read a MusicXML file (.musicxml, .xml, or compressed .mxl) into a `Score`, with muspy.

    Repeats and jumps are expanded as a player would (muspy's reading). Each part becomes a
    `Track` named by its part name; bar lines are the measures as played, so a short first
    measure is a pickup. Velocities come from ``<sound dynamics>`` where the score has them,
    else 64. A part's MIDI program is converted from MusicXML's 1-128 to MIDI's 0-127.

    Raises:
        MidiFileError: the file cannot be read as MusicXML or holds no notes.
    """
    from harmonycloak.optional import import_optional

    path = Path(path)
    if not path.exists():
        raise MidiFileError("does not exist", path)
    muspy = import_optional("muspy", "reading MusicXML")
    try:
        music = muspy.read_musicxml(path, compressed=path.suffix.lower() == ".mxl")
        part_names = _musicxml_part_names(path)
    except Exception as error:  # muspy raises ParseError, BadZipFile, KeyError, ValueError...
        raise MidiFileError(f"cannot be read as MusicXML ({error or type(error).__name__})", path) from None
    return score_from_muspy(music, path, "musicxml", part_names)


def _musicxml_part_names(path: Path) -> list[str]:
    """Part names in the order of the score's parts (muspy names tracks by instrument)."""
    if path.suffix.lower() == ".mxl":
        with zipfile.ZipFile(path) as archive:
            container = ET.fromstring(archive.read("META-INF/container.xml"))
            rootfile = next(element for element in container.iter() if element.tag.endswith("rootfile"))
            root = ET.fromstring(archive.read(rootfile.attrib["full-path"]))
    else:
        root = ET.parse(path).getroot()
    names = {
        part.attrib.get("id"): " ".join((part.findtext("part-name") or "").split())
        for part in root.findall("part-list/score-part")
    }
    return [names.get(part.attrib.get("id"), "") for part in root.findall("part")]


def score_from_muspy(music, path: Path | None, source_format: str, part_names: list[str] | None = None) -> Score:
    """A `Score` from a ``muspy.Music``; ``part_names`` replace the track names if one per track."""
    ticks_per_beat = int(music.resolution)
    tracks = []
    use_part_names = part_names is not None and len(part_names) == len(music.tracks)
    for index, source in enumerate(music.tracks):
        notes = [note for note in source.notes if note.duration > 0]
        name = part_names[index] if use_part_names else (source.name or "")
        tracks.append(
            Track(
                name=name,
                # MusicXML numbers programs 1-128, MIDI 0-127; muspy passes the number through.
                program=int(min(max(source.program - 1, 0), 127)),
                is_drum=bool(source.is_drum),
                notes=Notes.from_arrays(
                    [note.pitch for note in notes],
                    np.clip([note.velocity for note in notes], 1, 127) if notes else [],
                    [note.time for note in notes],
                    [note.time + note.duration for note in notes],
                ),
            )
        )
    tempo_map = TempoMap.from_changes(
        ticks_per_beat, [(tempo.time, 60e6 / tempo.qpm) for tempo in music.tempos if tempo.qpm > 0]
    )
    time_signatures = sorted_time_signatures(
        [(ts.time, ts.numerator, ts.denominator) for ts in music.time_signatures], ticks_per_beat
    )
    score = Score(
        tracks=tracks,
        tempo_map=tempo_map,
        time_signatures=time_signatures,
        bar_lines_tick=np.zeros(1, dtype=np.int64),
        source_path=path,
        source_format=source_format,
        title=(music.metadata.title or "") if music.metadata is not None else "",
    )
    if score.num_notes == 0:
        raise MidiFileError("holds no notes (nothing to play or protect)", path)
    check_timing(tempo_map, time_signatures, score.end_tick, path)
    score.bar_lines_tick = bar_lines_from_measures(
        [barline.time for barline in music.barlines], time_signatures, ticks_per_beat, score.end_tick
    )
    return score


def bar_lines_from_measures(
    measure_ticks: list[int], time_signatures: list[TimeSignature], ticks_per_beat: int, end_tick: int
) -> np.ndarray:
    """Bar lines of a notated score from the start tick of each measure as played.

    The last measure is taken to end at the later of the last note's end and a full bar of
    the time signature in force after its start. Without measures, bar lines follow the time
    signatures as for MIDI.

    Returns:
        int64, shape (bars + 1,).
    """
    starts = sorted({int(tick) for tick in measure_ticks if tick < max(end_tick, 1)})
    if not starts:
        return bar_lines_from_time_signatures(time_signatures, ticks_per_beat, end_tick)
    in_force = [ts for ts in time_signatures if ts.tick <= starts[-1]] or [TimeSignature(0, 4, 4)]
    full_bar_end = starts[-1] + round(in_force[-1].quarters_per_bar * ticks_per_beat)
    return np.asarray(starts + [max(end_tick, full_bar_end)], dtype=np.int64)
