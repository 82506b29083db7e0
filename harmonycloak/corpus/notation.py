"""Read ABC and Humdrum (**kern) files with music21 into `Score`s.

muspy reads these formats only through music21 too, and its bridge (``muspy.from_music21``)
does not run with music21 >= 8 (it uses the removed ``Stream.flat``), so the conversion from a
music21 stream is written here. MusicXML is read faster by muspy: see
`harmonycloak.io.midi.read_musicxml`.

Like muspy's MusicXML reader, repeats are expanded as played (where music21 can expand
them; a tune whose repeat marks it cannot resolve is read as written), tied notes become one
note, grace notes and chord symbols are left out, and notes without a dynamic get velocity 64.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from harmonycloak.errors import MidiFileError
from harmonycloak.io.midi import bar_lines_from_measures, check_timing, sorted_time_signatures
from harmonycloak.music import Notes, Score, TempoMap, Track
from harmonycloak.optional import import_optional

log = logging.getLogger(__name__)

MUSIC21_FORMATS = {".abc": "abc", ".krn": "humdrum"}
MAX_TICKS_PER_BEAT = 960 * 7  # beyond this, positions are rounded to 960 ticks per beat


def read_with_music21(path: str | Path) -> list[tuple[str, Score]]:
    """Every tune of an ABC or Humdrum file, as ``(name, score)`` pairs.

    The name is the file's name, with ``#N`` (the ABC ``X:`` number) for files of many tunes.
    A tune that cannot be converted (no notes, absurd timing) is skipped and logged.

    Raises:
        MidiFileError: music21 cannot parse the file at all.
    """
    music21 = import_optional("music21", "reading the music21 corpus")

    path = Path(path)
    source_format = MUSIC21_FORMATS.get(path.suffix.lower())
    if source_format is None:
        raise MidiFileError(f"is not an ABC or Humdrum file ({path.suffix})", path)
    try:
        parsed = music21.converter.parse(path, format=source_format, forceSource=True)
    except Exception as error:  # music21 raises many kinds on bad input
        raise MidiFileError(f"cannot be read as {source_format.upper()} ({error})", path) from None
    many = isinstance(parsed, music21.stream.Opus)
    streams = list(parsed.scores) if many else [parsed]
    pieces = []
    for index, stream in enumerate(streams):
        number = getattr(stream.metadata, "number", None) if stream.metadata else None
        name = f"{path.name}#{number or index + 1}" if many else path.name
        try:
            pieces.append((name, score_from_music21(stream, path, source_format)))
        except MidiFileError as error:
            log.info("skipping %s: %s", name, error.message)
    return pieces


def score_from_music21(stream, path: Path | None, source_format: str) -> Score:
    """A `Score` from a music21 Score (or Part) stream."""
    music21 = import_optional("music21", "reading the music21 corpus")

    try:
        stream = stream.expandRepeats()
    except Exception:  # ExpanderException and others for repeat marks it cannot resolve
        pass
    parts = list(stream.parts) or [stream]
    raw_parts = []
    for part in parts:
        events = []
        for element in part.stripTies().flatten().notes:
            if isinstance(element, music21.harmony.ChordSymbol):
                continue
            length = Fraction(element.duration.quarterLength)
            if length <= 0:  # grace notes
                continue
            velocity = element.volume.velocity or 64
            for pitch in element.pitches:
                events.append((Fraction(element.offset), length, int(pitch.midi), int(velocity)))
        instrument = part.getInstrument(returnDefault=False)
        program = instrument.midiProgram if instrument is not None and instrument.midiProgram is not None else 0
        raw_parts.append((part.partName or "", int(program), events))

    first = parts[0]
    measures = [Fraction(m.offset) for m in first.getElementsByClass(music21.stream.Measure)]
    signatures = [
        (Fraction(ts.offset), ts.numerator, ts.denominator)
        for ts in first.flatten().getElementsByClass(music21.meter.TimeSignature)
    ]
    tempos = [
        (Fraction(start), mark.getQuarterBPM())
        for start, _end, mark in stream.metronomeMarkBoundaries()
        if mark.getQuarterBPM()
    ]
    positions = [value for _n, _p, events in raw_parts for e in events for value in e[:2]]
    positions += measures + [t for t, _n, _d in signatures] + [t for t, _q in tempos]
    ticks_per_beat = _ticks_per_beat(positions)

    def tick(value: Fraction) -> int:
        return int(math.floor(value * ticks_per_beat + Fraction(1, 2)))

    tracks = []
    for name, program, events in raw_parts:
        tracks.append(
            Track(
                name=name,
                program=min(max(program, 0), 127),
                is_drum=False,
                notes=Notes.from_arrays(
                    [e[2] for e in events],
                    np.clip([e[3] for e in events], 1, 127) if events else [],
                    [tick(e[0]) for e in events],
                    [tick(e[0] + e[1]) for e in events],
                ),
            )
        )
    tempo_map = TempoMap.from_changes(ticks_per_beat, [(tick(t), 60e6 / bpm) for t, bpm in tempos])
    time_signatures = sorted_time_signatures([(tick(t), n, d) for t, n, d in signatures], ticks_per_beat)
    title = (stream.metadata.title or "") if stream.metadata is not None else ""
    score = Score(
        tracks=tracks,
        tempo_map=tempo_map,
        time_signatures=time_signatures,
        bar_lines_tick=np.zeros(1, dtype=np.int64),
        source_path=path,
        source_format=source_format,
        title=title,
    )
    if score.num_notes == 0:
        raise MidiFileError("holds no notes (nothing to play or protect)", path)
    check_timing(tempo_map, time_signatures, score.end_tick, path)
    score.bar_lines_tick = bar_lines_from_measures(
        [tick(m) for m in measures], time_signatures, ticks_per_beat, score.end_tick
    )
    return score


def _ticks_per_beat(positions: list[Fraction]) -> int:
    """The smallest tick grid on which every position falls exactly (at least 1), or 960
    when that grid would be finer than `MAX_TICKS_PER_BEAT` (then positions are rounded)."""
    ticks_per_beat = 1
    for value in positions:
        ticks_per_beat = math.lcm(ticks_per_beat, Fraction(value).denominator)
        if ticks_per_beat > MAX_TICKS_PER_BEAT:
            return 960
    return ticks_per_beat
