"""The MIDI cloak: the velocity bound H(T_H(ν)) by hand, dominant notes by hand-counted cumulative
velocity, bounds and tails, phrases against `PianoRoll.bars`, MIDI round trips read back by
pretty_midi, symusic and miditok, and rendering with FluidSynth against the masking model."""

from __future__ import annotations

import math

import mido
import numpy as np
import pretty_midi
import pytest
import symusic
import torch

from harmonycloak.cloak.midi import (
    BODY,
    TAIL,
    MidiCloakSettings,
    MidiDominantCloak,
    dominant_notes,
    hearing_threshold_velocity,
    protected_score,
)
from harmonycloak.cloak.midi_problem import MidiCloakProblem, velocity_weights
from harmonycloak.cloak.model_input import instrument_rolls, track_instruments
from harmonycloak.io.midi import as_type_1, read_midi, write_midi
from harmonycloak.io.render import can_render, render_midi
from harmonycloak.metrics.perceptual import noise_to_mask_ratio_stats_db
from harmonycloak.models.interface import PhraseLayout
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

TPB = 1000  # at 120 bpm a tick is 0.5 ms: a 10 ms window is 20 ticks


def one_track_score(notes, tracks=1, bars=1):
    """Score at 120 bpm, 4/4, TPB ticks per beat; ``notes`` = (pitch, velocity, start_tick, end_tick)."""
    pitch, velocity, start, end = zip(*notes)
    made = [Track(f"voice {index}", 0, False, Notes.from_arrays(pitch, velocity, start, end), channel=index)
            for index in range(tracks)]
    return Score(made, TempoMap.constant(120.0, TPB), [TimeSignature(0, 4, 4)],
                 np.arange(bars + 1, dtype=np.int64) * 4 * TPB)


def test_hearing_threshold_velocity_is_terhardt_through_the_dls_curve_by_hand():
    # A4 = 440 Hz: T_q = 3.64 f^-0.8 - 6.5 exp(-0.6 (f - 3.3)^2) + 1e-3 f^4, f in kHz.
    f = 0.44
    threshold_db = 3.64 * f**-0.8 - 6.5 * math.exp(-0.6 * (f - 3.3) ** 2) + 1e-3 * f**4
    # DLS Level 1: 40 log10(v / 127) dB under a velocity-127 note of 78 dB SPL.
    expected = 127 * 10 ** ((threshold_db - 78.0) / 40.0)
    assert hearing_threshold_velocity(np.array([69]), 78.0).item() == pytest.approx(expected, rel=1e-9)
    # C2 (65.4 Hz) needs a louder note to be heard than A4: the threshold in quiet rises at low frequencies.
    assert hearing_threshold_velocity(np.array([36]), 78.0).item() > 3 * expected


def test_dominant_note_is_the_pitch_with_the_largest_cumulative_velocity_by_hand():
    # Windows of 10 ms = 20 ticks. Note 0: pitch 60, v 100, 0-25 ms; note 1: pitch 64, v 40, 0-50 ms;
    # note 2: pitch 67, v 30, 5-50 ms; note 3: pitch 72, v 10, 60-65 ms.
    score = one_track_score([(60, 100, 0, 50), (64, 40, 0, 100), (67, 30, 10, 100), (72, 10, 120, 130)])
    notes = score.tracks[0].notes  # sorted by start, then pitch: indices as listed
    start_s = score.tempo_map.tick_to_seconds(notes.start_tick)
    end_s = score.tempo_map.tick_to_seconds(notes.end_tick)
    dominant, level = dominant_notes(notes, start_s, end_s, 7, 0.010, silence_threshold_velocity=8.0)
    # window 0: 60 → 100, 64 → 40, 67 → 30·0.5 = 15; window 2: 60 → 100·0.5 = 50 beats 64 → 40;
    # windows 3-4: 64 → 40 beats 67 → 30; window 5: nothing; window 6: 72 → 10·0.5 = 5 < 8: none.
    assert dominant.tolist() == [0, 0, 0, 1, 1, -1, -1]
    np.testing.assert_allclose(level, [100, 100, 50, 40, 40, 0, 5])


def test_a_tie_goes_to_the_lower_pitch():
    score = one_track_score([(62, 50, 0, 40), (60, 50, 0, 40)])
    notes = score.tracks[0].notes
    seconds = score.tempo_map.tick_to_seconds
    dominant, _ = dominant_notes(notes, seconds(notes.start_tick), seconds(notes.end_tick), 2, 0.010, 8.0)
    assert notes.pitch[dominant].tolist() == [60, 60]


def test_added_notes_sit_at_the_dominant_pitch_inside_eq7_with_tails_where_the_pitch_is_free():
    # 120 bpm: 100 ms = 200 ticks. Pitch 60 (v 100) for a beat, 62 (v 80) for a beat, 60 again
    # 100 ticks later. Each note's pitch is free for 100 ms after it: a tail there; the last note's
    # tail would outlast the piece, so it has none.
    score = one_track_score([(60, 100, 0, 1000), (62, 80, 1000, 2000), (60, 100, 2100, 3000)])
    settings = MidiCloakSettings(headroom_db=14.0, tail_ms=100.0)
    cloak = MidiDominantCloak(score, steps_per_beat=12, settings=settings)
    runs = cloak.runs
    got = sorted(zip(runs.kind.tolist(), runs.pitch.tolist(), runs.start_tick.tolist(), runs.end_tick.tolist()))
    assert got == [
        (BODY, 60, 0, 1000), (BODY, 60, 2100, 3000), (BODY, 62, 1000, 2000),
        (TAIL, 60, 1000, 1200), (TAIL, 62, 2000, 2200),
    ]
    # Eq. 7 with integer velocities: ⌈H(T_H(ν))⌉ ≤ δ ≤ ⌊M · 10^(−14/40)⌋ (M = the dominant note's velocity).
    lower = np.maximum(np.ceil(hearing_threshold_velocity(runs.pitch, 78.0).numpy()), 1)
    upper = np.floor(runs.note_velocity * 10 ** (-14 / 40))
    np.testing.assert_array_equal(cloak.lower_velocity.numpy(), lower)
    np.testing.assert_array_equal(cloak.upper_velocity.numpy(), upper)
    assert upper[runs.pitch == 60].tolist() == [44, 44, 44] and upper[runs.pitch == 62].tolist() == [35, 35]
    for logit in (-30.0, 0.0, 30.0):
        with torch.no_grad():
            cloak.velocity_logit.fill_(logit)
        written = cloak.quantised_velocity()
        assert ((written >= lower) & (written <= upper)).all()
    assert (written == upper).all()  # the sigmoid reaches its upper bound


def test_a_tail_stops_where_the_same_pitch_comes_back_and_a_quiet_window_gets_no_noise():
    # 60 comes back 50 ticks (25 ms) after it ends: its tail is cut there. The last note, velocity
    # 5, never reaches the threshold of 8: no noise.
    score = one_track_score([(60, 100, 0, 1000), (60, 100, 1050, 2000), (64, 5, 2000, 3000)])
    cloak = MidiDominantCloak(score, 12, MidiCloakSettings(headroom_db=14.0, tail_ms=100.0))
    spans = sorted(zip(cloak.runs.start_tick.tolist(), cloak.runs.end_tick.tolist()))
    assert spans == [(0, 1000), (1000, 1050), (1050, 2000), (2000, 2200)]
    assert 64 not in cloak.runs.pitch.tolist()
    # 20 ticks (10 ms) of gap round to no step of a 12-per-beat roll (a step is 83.3 ticks): the tail
    # is dropped rather than written where the models never see it.
    score = one_track_score([(60, 100, 0, 1000), (60, 100, 1020, 2000)])
    cloak = MidiDominantCloak(score, 12, MidiCloakSettings(headroom_db=14.0, tail_ms=100.0))
    spans = sorted(zip(cloak.runs.start_tick.tolist(), cloak.runs.end_tick.tolist()))
    assert spans == [(0, 1000), (1020, 2000)]  # and the last note's tail would outlast the piece


def test_drums_get_no_noise_and_weights_are_one_minus_the_velocity_share():
    score = one_track_score([(36, 100, 0, 1000)], tracks=2)
    score.tracks[1].is_drum, score.tracks[1].channel = True, 9
    cloak = MidiDominantCloak(score, 12)
    assert set(cloak.runs.track.tolist()) == {0}
    roll = np.zeros((2, 4, 128), dtype=np.float32)
    roll[0, :3, 60] = 1.0  # cumulative velocity 3
    roll[1, 0, 60] = 1.0  # 1
    np.testing.assert_allclose(velocity_weights(roll).numpy(), [0.25, 0.75])
    np.testing.assert_allclose(velocity_weights(roll[:1]).numpy(), [1.0])


def test_phrases_are_the_bars_of_the_roll_four_at_a_time_with_a_pickup_right_aligned():
    # A one-beat pickup (bar 0 is 1 beat long), then 5 full bars: 6 bars, phrases of 4 → starts 0, 2.
    notes = [(60 + bar, 64, start, start + 500) for bar, start in enumerate(range(0, 21000, 1000))]
    score = one_track_score(notes)
    score.bar_lines_tick = np.array([0, 1000, 5000, 9000, 13000, 17000, 21000])
    cloak = MidiDominantCloak(score, 12)
    problem = MidiCloakProblem(score, cloak, PhraseLayout(steps_per_bar=48, bars=4))
    bars = score.piano_roll(12).bars(48)  # (tracks, bars, 48, 128), independent layout
    expected = [bars[:, first:first + 4].reshape(1, 4 * 48, 128) for first in (0, 2)]
    assert problem.num_segments == 2
    clean = problem.clean_batch(torch.arange(2)).numpy()
    np.testing.assert_array_equal(clean, np.stack(expected))
    assert clean[0, 0, :36].max() == 0 and clean[0, 0, 36, 60] > 0  # the pickup's beat ends its slot


def test_the_noise_reaches_the_models_with_a_gradient_in_every_run():
    score = one_track_score([(60, 100, 0, 1000), (64, 80, 1000, 2000), (67, 90, 2000, 4000)], tracks=2)
    # (the last note's tail would outlast the piece: there is none)
    cloak = MidiDominantCloak(score, 12, MidiCloakSettings(headroom_db=14.0))
    problem = MidiCloakProblem(score, cloak, PhraseLayout(steps_per_bar=48, bars=1))
    protected, regulariser = problem.protected_batch(torch.arange(problem.num_segments))
    (protected.square().sum() + regulariser.sum()).backward()
    gradient = cloak.velocity_logit.grad
    assert torch.isfinite(gradient).all() and (gradient.abs() > 0).all()
    # the body of the first note: its cells rise from 100/127 by the noise velocity / 127
    clean = problem.clean_batch(torch.arange(problem.num_segments))
    first = int(np.flatnonzero((cloak.runs.kind == BODY) & (cloak.runs.pitch == 60))[0])
    rise = (protected - clean)[0, 0, 0, 60].item()
    assert rise == pytest.approx(cloak.velocity()[first].item() / 127, rel=1e-5)


# ------------------------------------------------------------------------- round trips


def band_midi(path):
    """A type 0 file (one track chunk, three channels): piano chords with a pedal controller, a
    bass line, drums; 96 ticks per beat, 100 bpm, a tempo change to 80 bpm at beat 8."""
    track = mido.MidiTrack()
    events = [(0, mido.MetaMessage("set_tempo", tempo=600000)), (768, mido.MetaMessage("set_tempo", tempo=750000)),
              (0, mido.Message("program_change", channel=0, program=0)),
              (0, mido.Message("program_change", channel=1, program=33)),
              (0, mido.Message("control_change", channel=0, control=64, value=127)),
              (0, mido.MetaMessage("lyrics", text="la"))]
    for beat in range(12):
        for pitch, velocity in ((60 + beat % 5, 90), (64 + beat % 5, 70)):
            events += [(96 * beat, mido.Message("note_on", channel=0, note=pitch, velocity=velocity)),
                       (96 * beat + 80, mido.Message("note_off", channel=0, note=pitch, velocity=0))]
        events += [(96 * beat, mido.Message("note_on", channel=1, note=36 + beat % 3, velocity=100)),
                   (96 * beat + 90, mido.Message("note_off", channel=1, note=36 + beat % 3, velocity=0)),
                   (96 * beat, mido.Message("note_on", channel=9, note=42, velocity=110)),
                   (96 * beat + 20, mido.Message("note_off", channel=9, note=42, velocity=0))]
    previous = 0
    for tick, message in sorted(events, key=lambda event: event[0]):
        track.append(message.copy(time=tick - previous))
        previous = tick
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    midi.tracks.append(track)
    midi.save(path)
    return path


def protect_at_random_velocities(path, out, seed=0):
    """Cloak ``path`` with random velocities inside the bounds; write; return (score, cloak, problem)."""
    score = read_midi(path)
    cloak = MidiDominantCloak(score, 12, MidiCloakSettings(headroom_db=14.0))
    with torch.no_grad():
        cloak.velocity_logit.copy_(4 * torch.randn(cloak.num_runs, generator=torch.Generator().manual_seed(seed)))
    problem = MidiCloakProblem(score, cloak, PhraseLayout(steps_per_bar=48, bars=4))
    protected = protected_score(score, cloak)
    protected.source_midi = as_type_1(protected.source_midi)
    write_midi(protected, out)
    return score, cloak, problem


@pytest.mark.parametrize("which", ["chorale", "band"])
def test_protect_write_read_gives_back_the_optimised_roll(tmp_path, chorale_midi, which):
    source = chorale_midi if which == "chorale" else band_midi(tmp_path / "band.mid")
    score, cloak, problem = protect_at_random_velocities(source, tmp_path / "protected.mid")
    back = read_midi(tmp_path / "protected.mid")
    roll = back.piano_roll(12)
    instrument = track_instruments(roll.track_names, roll.programs, roll.is_drum)
    assert instrument.tolist() == list(range(len(score.tracks))) + [t for t in cloak.tracks_cloaked]  # layers last
    folded = instrument_rolls(torch.from_numpy(roll.velocities), instrument).clamp(max=1.0).numpy()
    expected = problem.written_roll().numpy()
    assert folded.shape == expected.shape
    np.testing.assert_allclose(folded, expected, atol=1e-6)  # velocities are integers: exact
    assert (folded != problem.clean_roll.numpy()).any()
    # the original notes come back untouched, each track in its place
    for before, after in zip(score.tracks, back.tracks):
        for field in ("pitch", "velocity", "start_tick", "end_tick"):
            np.testing.assert_array_equal(getattr(before.notes, field), getattr(after.notes, field))


def layer_notes_by_hand(score, cloak):
    """(pitch, velocity, start_tick, end_tick) of every added note, from the cloak's own arrays."""
    velocity = cloak.quantised_velocity()
    return sorted(zip(cloak.runs.pitch.tolist(), velocity.tolist(), cloak.runs.start_tick.tolist(),
                      cloak.runs.end_tick.tolist()))


def test_pretty_midi_symusic_and_miditok_read_the_added_notes(tmp_path, chorale_midi):
    score, cloak, _ = protect_at_random_velocities(chorale_midi, tmp_path / "protected.mid", seed=3)
    path = tmp_path / "protected.mid"
    expected = layer_notes_by_hand(score, cloak)
    # pretty_midi: seconds; ticks through its own tick scale. A layer bears its part's name and
    # program: it is told apart here only by what it plays (not in the clean file)
    midi, clean = pretty_midi.PrettyMIDI(str(path)), pretty_midi.PrettyMIDI(str(chorale_midi))

    def played(instrument):
        return tuple(sorted((n.pitch, n.velocity, n.start, n.end) for n in instrument.notes))

    layers = [inst for inst in midi.instruments if played(inst) not in {played(c) for c in clean.instruments}]
    assert len(layers) == 4 and all(inst.program == 0 for inst in layers)
    assert sorted(inst.name for inst in layers) == sorted(inst.name for inst in clean.instruments)
    got = sorted((n.pitch, n.velocity, midi.time_to_tick(n.start), midi.time_to_tick(n.end))
                 for inst in layers for n in inst.notes)
    assert [g[:2] for g in got] == [e[:2] for e in expected]
    assert max(max(abs(g[2] - e[2]), abs(g[3] - e[3])) for g, e in zip(got, expected)) <= 1  # float seconds
    # symusic: ticks, exactly
    song, clean_song = symusic.Score(str(path)), symusic.Score(str(chorale_midi))
    assert len(song.tracks) == 2 * len(clean_song.tracks)
    got = sorted((n.pitch, n.velocity, n.time, n.time + n.duration)
                 for track in song.tracks[len(clean_song.tracks):] for n in track.notes)
    assert got == expected
    assert [t.name for t in song.tracks[len(clean_song.tracks):]] == [t.name for t in clean_song.tracks]
    # miditok: the added notes are tokens of their own, with their quiet velocities
    import miditok

    tokenizer = miditok.REMI(miditok.TokenizerConfig(num_velocities=127, use_programs=True, one_token_stream_for_programs=False))
    tokens = tokenizer(song)
    clean_tokens = tokenizer(symusic.Score(str(chorale_midi)))
    assert len(tokens) == len(clean_tokens) + 4  # one token stream per track: four more
    velocities = [int(t.split("_")[1]) for stream in tokens[len(clean_tokens):] for t in stream.tokens
                  if t.startswith("Velocity_")]
    assert sorted(velocities) == sorted(v for _, v, _, _ in expected)


def test_the_original_files_events_are_all_kept(tmp_path):
    source = band_midi(tmp_path / "band.mid")
    protect_at_random_velocities(source, tmp_path / "protected.mid")

    def absolute(track):
        tick, out = 0, []
        for message in track:
            tick += message.time
            out.append((tick, message.copy(time=0)))
        return out

    original = mido.MidiFile(source)
    protected = mido.MidiFile(tmp_path / "protected.mid")
    assert protected.type == 1 and len(protected.tracks) == len(original.tracks) + 2  # piano and bass layers
    assert absolute(protected.tracks[0]) == absolute(original.tracks[0])


@pytest.mark.skipif(not can_render(), reason="FluidSynth and a General MIDI soundfont are not installed")
def test_rendered_audio_differs_only_where_the_masking_model_says_it_is_masked(tmp_path, chorale_midi):
    """The worst case: every added note at the upper bound of the default strength (32 dB under
    its note). The first 20 s of both files rendered by FluidSynth."""
    score = read_midi(chorale_midi)
    cloak = MidiDominantCloak(score, 12)
    with torch.no_grad():
        cloak.velocity_logit.fill_(30.0)
    write_midi(protected_score(score, cloak), tmp_path / "loudest.mid")
    rate = 22_050
    original, protected = render_midi(chorale_midi, rate), render_midi(tmp_path / "loudest.mid", rate)
    assert original.shape == protected.shape
    length = 20 * rate
    difference = protected[:, :length] - original[:, :length]
    assert np.abs(difference).max() > 1e-3  # the added notes sound
    nmr = noise_to_mask_ratio_stats_db(original[:, :length], protected[:, :length], rate)
    assert nmr["fraction_above_0db"] == 0.0 and nmr["max_db"] < 0.0
    assert nmr["band_fraction_above_0db"] <= 0.001
