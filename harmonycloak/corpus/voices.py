"""Map the parts of a score to a collection's fixed tracks.

Models learn from tensors with a fixed number of tracks, so every piece of a collection gets
the same tracks:

- ``satb`` (Bach chorales): the parts whose name starts with Soprano, Alto, Tenor, Bass
  become tracks 0-3; instrumental parts (horns, violins, continuo doubling the voices) are
  dropped. A score without exactly one part of each voice is not a four-part chorale.
- ``range`` (everything else): melodic parts are ranked by mean pitch, highest first, and part
  ``r`` of ``P`` goes to track ``round(r * (T - 1) / (P - 1))`` of ``T``. With more parts than
  tracks, neighbours in range share a track (Palestrina's two tenors); with fewer, the top and
  bottom parts stay outer voices and a middle track is left empty. Drum parts are dropped.

Where merged parts sound the same pitch at once, the earlier note is cut where the later one
starts (a unison in one track is one key held), so that the track is valid MIDI.
"""

from __future__ import annotations

import numpy as np

from harmonycloak.music import Notes, Score, Track

SATB = ("soprano", "alto", "tenor", "bass")


def satb_tracks(score: Score, track_names: tuple[str, ...] = SATB) -> Score | None:
    """The score with only its Soprano, Alto, Tenor, Bass parts, in that order; None if it
    does not have exactly one part of each."""
    chosen = []
    for voice in SATB:
        matches = [track for track in score.tracks if _first_word(track.name) == voice]
        if len(matches) != 1:
            return None
        chosen.append(matches[0])
    tracks = [_fresh_track(name, [track]) for name, track in zip(track_names, chosen)]
    return _with_tracks(score, tracks)


def tracks_by_range(score: Score, track_names: tuple[str, ...]) -> Score:
    """The score's melodic parts grouped by range into ``len(track_names)`` tracks."""
    parts = [track for track in score.tracks if not track.is_drum and len(track.notes)]
    parts.sort(key=lambda track: -float(track.notes.pitch.mean()))
    num_tracks, num_parts = len(track_names), len(parts)
    groups: list[list[Track]] = [[] for _ in track_names]
    for rank, part in enumerate(parts):
        target = int(np.floor(rank * (num_tracks - 1) / (num_parts - 1) + 0.5)) if num_parts > 1 else 0
        groups[target].append(part)
    tracks = [_fresh_track(name, group) for name, group in zip(track_names, groups)]
    return _with_tracks(score, tracks)


def _first_word(name: str) -> str:
    words = name.lower().replace(",", " ").split()
    return words[0] if words else ""


def _fresh_track(name: str, parts: list[Track]) -> Track:
    """One track holding the notes of ``parts`` (none: an empty track)."""
    notes = Notes.concatenate([part.notes for part in parts])
    notes = Notes.from_arrays(notes.pitch, notes.velocity, notes.start_tick, notes.end_tick)
    return Track(
        name=name,
        program=parts[0].program if parts else 0,
        is_drum=False,
        notes=_cut_unisons(notes) if len(parts) > 1 else notes,
    )


def _cut_unisons(notes: Notes) -> Notes:
    """End each note where the next note of the same pitch starts; drop a note that starts
    with another of its pitch (the longer one is kept)."""
    order = np.lexsort((-(notes.end_tick - notes.start_tick), notes.start_tick, notes.pitch))
    pitch, start = notes.pitch[order], notes.start_tick[order]
    end, velocity = notes.end_tick[order].copy(), notes.velocity[order]
    same_pitch_next = pitch[1:] == pitch[:-1]
    keep = np.ones(len(pitch), dtype=bool)
    keep[1:] &= ~(same_pitch_next & (start[1:] == start[:-1]))
    pitch, start, end, velocity = pitch[keep], start[keep], end[keep], velocity[keep]
    cut = (pitch[1:] == pitch[:-1]) & (start[1:] < end[:-1])
    end[:-1][cut] = start[1:][cut]
    return Notes.from_arrays(pitch, velocity, start, end)


def _with_tracks(score: Score, tracks: list[Track]) -> Score:
    return Score(
        tracks=tracks,
        tempo_map=score.tempo_map,
        time_signatures=list(score.time_signatures),
        bar_lines_tick=score.bar_lines_tick.copy(),
        source_path=score.source_path,
        source_format=score.source_format,
        title=score.title,
    )
