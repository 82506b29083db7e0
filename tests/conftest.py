"""Shared test set-up."""

from pathlib import Path

import pytest
import torch

EXAMPLE_SONG = Path(__file__).resolve().parents[1] / "examples" / "elf-land.ogg"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests use tiny models, which run as fast on one thread as on two, and about twenty
    times faster than on two threads that compete with another process for two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def example_song() -> Path:
    """The real recording that ships with the project (Ogg Vorbis, 44.1 kHz stereo, tagged)."""
    return EXAMPLE_SONG


CHORALE = "bach/bwv1.6.mxl"  # a real chorale of the music21 corpus: four voices, a one-beat pickup


def rescaled(score, ticks_per_beat: int):
    """``score`` counted in the least multiple of ``ticks_per_beat`` that its own divides, as a new score."""
    import math

    from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

    ticks_per_beat = math.lcm(ticks_per_beat, score.ticks_per_beat)
    factor = ticks_per_beat // score.ticks_per_beat
    tracks = [Track(t.name, t.program, t.is_drum, Notes.from_arrays(t.notes.pitch, t.notes.velocity,
                                                                    t.notes.start_tick * factor, t.notes.end_tick * factor))
              for t in score.tracks]
    tempo = TempoMap.from_changes(ticks_per_beat, [(int(tick) * factor, us) for tick, us in
                                                   zip(score.tempo_map.change_ticks, score.tempo_map.microseconds_per_beat)])
    signatures = [TimeSignature(s.tick * factor, s.numerator, s.denominator) for s in score.time_signatures]
    return Score(tracks, tempo, signatures, score.bar_lines_tick * factor, title=score.title)


@pytest.fixture(scope="session")
def chorale_midi(tmp_path_factory) -> Path:
    """Bach's chorale BWV 1.6 (music21 corpus) written as a type 1 MIDI file at 480 ticks per beat."""
    from harmonycloak.corpus import corpus_folder, load_collection
    from harmonycloak.io.midi import write_midi

    folder = tmp_path_factory.mktemp("chorale")
    (piece,) = load_collection("bach", sources=[corpus_folder() / CHORALE], cache_dir=folder / "cache")
    return write_midi(rescaled(piece.score, 480), folder / "bwv1.6.mid")
