"""Containers for music as the rest of the package passes it around.

Units are in the field names. Audio samples are float32 in [-1, 1], laid out
``(channels, frames)`` so that one channel is one contiguous row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AudioFormat:
    """How an audio file was stored, so that the protected file can be stored the same way.

    Attributes:
        container: file kind as the user knows it: "wav", "flac", "ogg", "opus", "mp3", "m4a".
        codec: codec inside the container: "pcm", "flac", "vorbis", "opus", "mp3", "aac".
        subtype: soundfile subtype for lossless files ("PCM_16", "PCM_24", "PCM_32",
            "FLOAT", "DOUBLE"); None for lossy codecs.
        bitrate_bps: nominal bitrate of lossy codecs in bits per second; None for lossless.
    """

    container: str
    codec: str
    subtype: str | None = None
    bitrate_bps: int | None = None

    @property
    def is_lossy(self) -> bool:
        return self.codec in {"vorbis", "opus", "mp3", "aac"}


@dataclass
class Audio:
    """A piece of audio in memory.

    Attributes:
        samples: float32 array, shape (channels, frames), values in [-1, 1].
        sample_rate_hz: frames per second.
        format: how the file it came from was stored; None for audio made in memory.
        source_path: the file it came from; None for audio made in memory.
    """

    samples: np.ndarray
    sample_rate_hz: int
    format: AudioFormat | None = None
    source_path: Path | None = field(default=None)

    @property
    def num_channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.sample_rate_hz


# --------------------------------------------------------------------------------------------
# Symbolic music: notes (what a MIDI file holds) and the piano roll (what models learn from).
#
# Time is counted in ticks, as in the file: ``ticks_per_beat`` ticks make one beat, and a beat
# is a quarter note (the MIDI convention, whatever the time signature). Seconds come from
# ticks through the tempo map. The piano roll counts time in steps, ``steps_per_beat`` to a
# beat, so that a bar has a fixed number of steps whatever the tempo.
# --------------------------------------------------------------------------------------------

DEFAULT_STEPS_PER_BEAT = 24
"""Piano-roll steps per quarter note: 24 as in MuseGAN's Lakh Pianoroll Dataset (96 steps to a
4/4 bar). 24 is divisible by 2, 3, 4, 6, 8 and 12, so 32nd notes and eighth- and 16th-note
triplets fall exactly on steps, and a step lasts 20.8 ms at 120 bpm, the scale of the cloak's
10 ms windows."""

DEFAULT_MICROSECONDS_PER_BEAT = 500_000
"""Tempo of a MIDI file before its first tempo event: 120 bpm (Standard MIDI File 1.0)."""


def ticks_to_steps(ticks: np.ndarray | int, steps_per_beat: int, ticks_per_beat: int) -> np.ndarray:
    """Piano-roll step of each tick, rounded half up, int64 (shape of ``ticks``).

    Exact integer rounding: ``floor((2 * tick * steps_per_beat + ticks_per_beat) / (2 * ticks_per_beat))``.
    """
    tpb = int(ticks_per_beat)
    return (2 * np.asarray(ticks, dtype=np.int64) * int(steps_per_beat) + tpb) // (2 * tpb)


def note_steps(start_tick: np.ndarray, end_tick: np.ndarray, steps_per_beat: int,
               ticks_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``[start, end)`` a note occupies in the piano roll, each int64 (notes,): its rounded
    start and end, and at least one step, so that no note vanishes."""
    starts = ticks_to_steps(start_tick, steps_per_beat, ticks_per_beat)
    return starts, np.maximum(ticks_to_steps(end_tick, steps_per_beat, ticks_per_beat), starts + 1)


@dataclass(frozen=True)
class TimeSignature:
    """A time signature that takes effect at ``tick`` (a bar starts there).

    Attributes:
        tick: where it takes effect, in ticks.
        numerator: beats in a bar as written (the 3 of 3/4).
        denominator: note value of those beats as written (the 4 of 3/4), a power of two.
    """

    tick: int
    numerator: int
    denominator: int

    @property
    def quarters_per_bar(self) -> float:
        """Length of one bar in quarter notes (3/4 -> 3.0, 6/8 -> 3.0, 2/2 -> 4.0)."""
        return self.numerator * 4 / self.denominator


@dataclass(frozen=True, eq=False)  # arrays: compare fields with numpy, not ==
class TempoMap:
    """Where the tempo changes, to convert ticks to seconds and back.

    Attributes:
        ticks_per_beat: ticks in a quarter note (the MIDI file's division).
        change_ticks: int64, shape (changes,): ticks at which a tempo takes effect; the first
            is 0, the rest strictly increase.
        microseconds_per_beat: float64, shape (changes,): the tempo from each change on, as a
            MIDI set-tempo event states it (500000 = 120 bpm).
    """

    ticks_per_beat: int
    change_ticks: np.ndarray
    microseconds_per_beat: np.ndarray

    @classmethod
    def from_changes(
        cls, ticks_per_beat: int, changes: list[tuple[int, float]]
    ) -> "TempoMap":
        """Build from ``(tick, microseconds_per_beat)`` pairs in any order.

        Of several changes at one tick the last one listed wins (what a player does); before
        the first change the tempo is 120 bpm, as the MIDI standard says.
        """
        by_tick: dict[int, float] = {}
        for tick, us in sorted(changes, key=lambda change: change[0]):
            by_tick[int(tick)] = float(us)
        if 0 not in by_tick:
            by_tick[0] = float(DEFAULT_MICROSECONDS_PER_BEAT)
        ticks = sorted(by_tick)
        return cls(
            ticks_per_beat=int(ticks_per_beat),
            change_ticks=np.asarray(ticks, dtype=np.int64),
            microseconds_per_beat=np.asarray([by_tick[t] for t in ticks], dtype=np.float64),
        )

    @classmethod
    def constant(cls, bpm: float, ticks_per_beat: int) -> "TempoMap":
        """One tempo throughout, in quarter notes per minute."""
        return cls.from_changes(ticks_per_beat, [(0, 60e6 / bpm)])

    @property
    def bpm(self) -> np.ndarray:
        """float64, shape (changes,): each tempo in quarter notes per minute."""
        return 60e6 / self.microseconds_per_beat

    def _change_seconds(self) -> np.ndarray:
        """float64, shape (changes,): time of each change in seconds."""
        seconds_per_tick = self.microseconds_per_beat[:-1] / 1e6 / self.ticks_per_beat
        return np.concatenate([[0.0], np.cumsum(np.diff(self.change_ticks) * seconds_per_tick)])

    def tick_to_seconds(self, ticks: np.ndarray | float) -> np.ndarray:
        """Seconds from the start at the given ticks, shape as ``ticks`` (float64).

        Ticks before 0 extrapolate with the first tempo, ticks after the last change with the
        last tempo.
        """
        ticks = np.asarray(ticks, dtype=np.float64)
        segment = np.clip(np.searchsorted(self.change_ticks, ticks, side="right") - 1, 0, None)
        seconds_per_tick = self.microseconds_per_beat[segment] / 1e6 / self.ticks_per_beat
        return self._change_seconds()[segment] + (ticks - self.change_ticks[segment]) * seconds_per_tick

    def seconds_to_tick(self, seconds: np.ndarray | float) -> np.ndarray:
        """Ticks (float64, not rounded) at the given seconds from the start; inverse of
        `tick_to_seconds`."""
        seconds = np.asarray(seconds, dtype=np.float64)
        change_seconds = self._change_seconds()
        segment = np.clip(np.searchsorted(change_seconds, seconds, side="right") - 1, 0, None)
        ticks_per_second = self.ticks_per_beat * 1e6 / self.microseconds_per_beat[segment]
        return self.change_ticks[segment] + (seconds - change_seconds[segment]) * ticks_per_second


@dataclass(eq=False)  # arrays: compare fields with numpy, not ==
class Notes:
    """The notes of one track as parallel arrays, sorted by start tick, then pitch.

    Attributes:
        pitch: int16, shape (notes,): MIDI key number, 0-127 (60 = middle C).
        velocity: int16, shape (notes,): MIDI note-on velocity, 1-127.
        start_tick: int64, shape (notes,): where the note starts.
        end_tick: int64, shape (notes,): where it ends; ``end_tick >= start_tick``.
        source_on_index: int64, shape (notes,): index of the note's note-on message in its
            track chunk of the MIDI file it was read from; -1 for a note that file does not
            hold (added, or read from another format). `write_midi` uses it to change the
            original file in place.
        source_off_index: int64, shape (notes,): likewise for the note-off message; -1 when
            there is none (a note the file never ends is ended at the end of its track).
    """

    pitch: np.ndarray
    velocity: np.ndarray
    start_tick: np.ndarray
    end_tick: np.ndarray
    source_on_index: np.ndarray
    source_off_index: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        pitch,
        velocity,
        start_tick,
        end_tick,
        source_on_index=None,
        source_off_index=None,
    ) -> "Notes":
        """Build from array-likes of equal length, sorting by (start tick, pitch)."""
        pitch = np.asarray(pitch, dtype=np.int16).reshape(-1)
        missing = np.full(pitch.shape, -1, dtype=np.int64)
        columns = [
            pitch,
            np.asarray(velocity, dtype=np.int16).reshape(-1),
            np.asarray(start_tick, dtype=np.int64).reshape(-1),
            np.asarray(end_tick, dtype=np.int64).reshape(-1),
            missing if source_on_index is None else np.asarray(source_on_index, dtype=np.int64).reshape(-1),
            missing if source_off_index is None else np.asarray(source_off_index, dtype=np.int64).reshape(-1),
        ]
        if len({len(column) for column in columns}) != 1:
            raise ValueError("pitch, velocity, start_tick, end_tick must have the same length")
        order = np.lexsort((columns[0], columns[2]))  # last key first: by start, then pitch
        return cls(*(column[order] for column in columns))

    @classmethod
    def empty(cls) -> "Notes":
        return cls.from_arrays([], [], [], [])

    def __len__(self) -> int:
        return int(self.pitch.shape[0])

    def added(self, pitch, velocity, start_tick, end_tick) -> "Notes":
        """A copy with new notes added (they have no source messages: ``-1``)."""
        extra = Notes.from_arrays(pitch, velocity, start_tick, end_tick)
        return Notes.concatenate([self, extra])

    @staticmethod
    def concatenate(parts: list["Notes"]) -> "Notes":
        """All notes of ``parts`` in one sorted `Notes`."""
        if not parts:
            return Notes.empty()
        return Notes.from_arrays(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _NOTE_FIELDS)
        )

    def copy(self) -> "Notes":
        return Notes(*(getattr(self, name).copy() for name in _NOTE_FIELDS))


_NOTE_FIELDS = ("pitch", "velocity", "start_tick", "end_tick", "source_on_index", "source_off_index")


@dataclass
class Track:
    """One instrument: its notes and how a MIDI player should sound them.

    Attributes:
        name: the track's name in the file or the part's name in the score ("" if none).
        program: General MIDI program, 0-127 (0 = Acoustic Grand Piano); for a track whose
            program changes, the program in force at its first note.
        is_drum: True for General MIDI percussion (MIDI channel 10, ``channel == 9``).
        notes: its notes.
        channel: MIDI channel 0-15 the notes are played on; None where the source has none
            (`write_midi` then picks one).
        file_track: index of the track chunk (MTrk) that holds it in the source MIDI file;
            None for a track that file does not have.
        port: MIDI port of that track chunk (the port meta event; 0 when absent).
    """

    name: str
    program: int
    is_drum: bool
    notes: Notes
    channel: int | None = None
    file_track: int | None = None
    port: int = 0

    def copy(self) -> "Track":
        return Track(self.name, self.program, self.is_drum, self.notes.copy(), self.channel,
                     self.file_track, self.port)


@dataclass(eq=False)  # arrays: compare fields with numpy, not ==
class Score:
    """A piece as notes: what a MIDI file holds, read from MIDI, MusicXML, ABC or Humdrum.

    Attributes:
        tracks: the instruments, in file or score order.
        tempo_map: tempo changes, and the ticks per beat every tick in the score counts in.
        time_signatures: sorted by tick, the first at tick 0 (4/4 where the source has none).
        bar_lines_tick: int64, shape (bars + 1,): where each bar starts, then where the last
            bar ends. From the measures of a notated score (a short first bar is a pickup);
            from the time signatures for a MIDI file, which has no bar lines.
        source_path: the file it was read from; None for music made in memory.
        source_format: "midi", "musicxml", "abc" or "humdrum"; None for music made in memory.
        source_midi: the bytes of the MIDI file it was read from. `write_midi` writes these
            again with the notes changed, so that everything the notes do not say
            (controllers, program changes, lyrics, markers, system exclusive) is kept.
        title: the piece's title where the source gives one.
    """

    tracks: list[Track]
    tempo_map: TempoMap
    time_signatures: list[TimeSignature]
    bar_lines_tick: np.ndarray
    source_path: Path | None = None
    source_format: str | None = None
    source_midi: bytes | None = field(default=None, repr=False)
    title: str = ""

    @property
    def ticks_per_beat(self) -> int:
        return self.tempo_map.ticks_per_beat

    @property
    def num_notes(self) -> int:
        return sum(len(track.notes) for track in self.tracks)

    @property
    def end_tick(self) -> int:
        """Where the last note ends (0 for a score without notes)."""
        ends = [int(track.notes.end_tick.max()) for track in self.tracks if len(track.notes)]
        return max(ends, default=0)

    @property
    def duration_s(self) -> float:
        """Seconds from the start to the end of the last note."""
        return float(self.tempo_map.tick_to_seconds(self.end_tick))

    def copy(self) -> "Score":
        """A copy whose note arrays can be changed without touching this one."""
        return Score(
            tracks=[track.copy() for track in self.tracks],
            tempo_map=self.tempo_map,
            time_signatures=list(self.time_signatures),
            bar_lines_tick=self.bar_lines_tick.copy(),
            source_path=self.source_path,
            source_format=self.source_format,
            source_midi=self.source_midi,
            title=self.title,
        )

    def piano_roll(self, steps_per_beat: int = DEFAULT_STEPS_PER_BEAT) -> "PianoRoll":
        """The multi-track piano roll of these notes.

        A note occupies steps ``[round(start), round(end))`` of ``start_tick * steps_per_beat /
        ticks_per_beat`` (rounded half up), and at least one step, so that no note vanishes;
        its cells hold ``velocity / 127``. Where notes of one pitch overlap in a track the
        louder wins. The roll ends at the end of the last bar.
        """
        if steps_per_beat < 1:
            raise ValueError(f"steps_per_beat must be at least 1, not {steps_per_beat}")
        tpb = self.ticks_per_beat

        def to_steps(ticks: np.ndarray) -> np.ndarray:
            return ticks_to_steps(ticks, steps_per_beat, tpb)

        bar_lines_step = to_steps(self.bar_lines_tick)
        num_steps = int(max(bar_lines_step[-1] if len(bar_lines_step) else 0, to_steps(self.end_tick)))
        velocities = np.zeros((len(self.tracks), num_steps, 128), dtype=np.float32)
        for index, track in enumerate(self.tracks):
            notes = track.notes
            starts, ends = note_steps(notes.start_tick, notes.end_tick, steps_per_beat, tpb)
            levels = notes.velocity.astype(np.float32) / 127.0
            # A loop over notes: each writes a run of steps; np.maximum keeps the louder of
            # overlapping notes (no vectorised scatter-max over runs in numpy).
            for start, end, pitch, level in zip(starts, ends, notes.pitch, levels):
                run = velocities[index, start:end, pitch]
                np.maximum(run, level, out=run)
        return PianoRoll(
            velocities=velocities,
            steps_per_beat=steps_per_beat,
            tempo_map=self.tempo_map,
            time_signatures=list(self.time_signatures),
            bar_lines_step=bar_lines_step,
            track_names=[track.name for track in self.tracks],
            programs=[track.program for track in self.tracks],
            is_drum=[track.is_drum for track in self.tracks],
        )


@dataclass(eq=False)  # arrays: compare fields with numpy, not ==
class PianoRoll:
    """A multi-track piano roll: the paper's ``x in [0,1]^(R x S x M)``, tracks first.

    Attributes:
        velocities: float32, shape (tracks, steps, 128): note velocity / 127 of each track at
            each step and MIDI pitch; 0 where no note sounds.
        steps_per_beat: steps in a quarter note.
        tempo_map: tempo changes (in ticks of the source score; `seconds_to_step` and
            `step_to_seconds` convert through it).
        time_signatures: as in the score, positioned in ticks.
        bar_lines_step: int64, shape (bars + 1,): step where each bar starts, then where the
            last one ends.
        track_names, programs, is_drum: one entry per track, as in `Track`.
    """

    velocities: np.ndarray
    steps_per_beat: int
    tempo_map: TempoMap
    time_signatures: list[TimeSignature]
    bar_lines_step: np.ndarray
    track_names: list[str]
    programs: list[int]
    is_drum: list[bool]

    @property
    def num_tracks(self) -> int:
        return int(self.velocities.shape[0])

    @property
    def num_steps(self) -> int:
        return int(self.velocities.shape[1])

    @property
    def num_bars(self) -> int:
        return max(len(self.bar_lines_step) - 1, 0)

    def step_to_seconds(self, steps: np.ndarray | float) -> np.ndarray:
        """Seconds from the start at the beginning of the given steps (float64)."""
        ticks_per_step = self.tempo_map.ticks_per_beat / self.steps_per_beat
        return self.tempo_map.tick_to_seconds(np.asarray(steps, dtype=np.float64) * ticks_per_step)

    def seconds_to_step(self, seconds: np.ndarray | float) -> np.ndarray:
        """Steps (float64, not rounded: floor it for the step that sounds at that time) at the
        given seconds; inverse of `step_to_seconds`."""
        ticks_per_step = self.tempo_map.ticks_per_beat / self.steps_per_beat
        return self.tempo_map.seconds_to_tick(seconds) / ticks_per_step

    def _nominal_bar_steps(self, tick: float) -> float:
        """Steps of a full bar under the time signature in force at ``tick``."""
        in_force = [ts for ts in self.time_signatures if ts.tick <= tick]
        signature = in_force[-1] if in_force else TimeSignature(0, 4, 4)
        return signature.quarters_per_bar * self.steps_per_beat

    def bars(self, steps_per_bar: int | None = None) -> np.ndarray:
        """The roll cut at its bar lines: float32, shape (tracks, bars, steps_per_bar, 128).

        Each bar fills its slot from the left and is padded with zeros at the end (a bar
        shorter than the slot, such as the last bar of a piece that ends early, or a bar in a
        shorter metre). A first bar shorter than its time signature's full bar is a pickup
        (anacrusis): it is placed at the *end* of its slot, so its notes sit on the beats
        they are written on.

        Args:
            steps_per_bar: slot length; None for the longest bar of the piece. To stack bars
                of many pieces, pass the same value for all (96 for 4/4 at 24 steps per beat).

        Raises:
            SettingsError: a bar is longer than ``steps_per_bar``.
        """
        from harmonycloak.errors import SettingsError

        lengths = np.diff(self.bar_lines_step)
        if steps_per_bar is None:
            steps_per_bar = int(lengths.max(initial=0))
        too_long = np.flatnonzero(lengths > steps_per_bar)
        if len(too_long):
            bar = int(too_long[0])
            raise SettingsError(
                f"bar {bar + 1} lasts {int(lengths[bar])} steps, more than steps_per_bar="
                f"{steps_per_bar}; pass a larger steps_per_bar or leave it out"
            )
        out = np.zeros((self.num_tracks, self.num_bars, steps_per_bar, 128), dtype=np.float32)
        for bar, (start, end) in enumerate(zip(self.bar_lines_step[:-1], self.bar_lines_step[1:])):
            content = self.velocities[:, start:min(end, self.num_steps)]
            offset = 0
            start_tick = start * self.tempo_map.ticks_per_beat / self.steps_per_beat
            if bar == 0 and end - start < round(self._nominal_bar_steps(start_tick)):
                offset = steps_per_bar - int(end - start)  # pickup: right-aligned
            out[:, bar, offset:offset + content.shape[1]] = content
        return out
