"""MIDI style mimicry (T2 for the zoo's symbolic models): the releases, the attacker's fine-tune,
and how the report reads the MIDI cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harmonycloak.bench.unlearnability.midi_mimicry import (
    MidiAlbum,
    MidiMimicrySpec,
    added_notes,
    finetuned,
    midi_cloak_at,
    piece_losses,
    random_midi_cloak,
    run_midi_mimicry,
    transposed,
    wrong_notes,
)
from harmonycloak.music import Notes, Score, TempoMap, TimeSignature, Track

TICKS_PER_BEAT = 480


def _four_parts(bars: int = 4, shift: int = 0) -> Score:
    """Four parts of quarter notes at velocity 64 (a chorale's texture): bass, tenor, alto, soprano."""
    tracks = []
    for part, (name, low) in enumerate((("Bass", 43), ("Tenor", 52), ("Alto", 57), ("Soprano", 64))):
        starts = np.arange(4 * bars) * TICKS_PER_BEAT
        pitch = low + shift + (np.arange(4 * bars) * (part + 1)) % 7
        tracks.append(Track(name, 52, False, Notes.from_arrays(pitch, np.full(len(starts), 64), starts,
                                                               starts + TICKS_PER_BEAT)))
    tempo = TempoMap.from_changes(TICKS_PER_BEAT, [(0, 600_000)])
    return Score(tracks, tempo, [TimeSignature(0, 4, 4)], np.arange(bars + 1) * 4 * TICKS_PER_BEAT)


def test_the_positive_control_doubles_every_note_off_pitch_at_its_own_loudness():
    score = _four_parts()
    released = wrong_notes(score, seed=3)
    assert len(released.tracks) == 8
    for source, original, layer in zip(score.tracks, released.tracks[:4], released.tracks[4:]):
        assert np.array_equal(original.notes.pitch, source.notes.pitch)  # the piece's own notes untouched
        assert (layer.name, layer.program) == (source.name, source.program)  # nothing marks the layer to drop
        assert np.array_equal(layer.notes.velocity, source.notes.velocity)
        assert np.array_equal(layer.notes.start_tick, source.notes.start_tick)
        off = np.abs(layer.notes.pitch.astype(int) - source.notes.pitch.astype(int))
        assert off.min() >= 1 and off.max() <= 11
    again = wrong_notes(score, seed=3)
    assert all(np.array_equal(a.notes.pitch, b.notes.pitch) for a, b in zip(released.tracks, again.tracks))
    assert added_notes([score], [released]) == {"added_notes_per_note": 1.0, "added_below_own_db": 0.0}


def test_the_random_control_draws_the_cloak_s_notes_uniformly_inside_their_bounds():
    from harmonycloak.cloak.midi import MidiCloakSettings, MidiDominantCloak
    from harmonycloak.settings import headroom_db

    score = _four_parts(bars=8)
    cloak = MidiDominantCloak(score, 12, MidiCloakSettings(headroom_db=headroom_db("midi", "medium")))
    lower, upper = cloak.lower_velocity.numpy(), cloak.upper_velocity.numpy()
    released = random_midi_cloak(score, 12, "medium", seed=0)
    layers = released.tracks[len(score.tracks):]
    # Each added note is one of the cloak's runs: same track, pitch and start.
    run_at = {(int(t), int(p), int(s)): i for i, (t, p, s) in
              enumerate(zip(cloak.runs.track, cloak.runs.pitch, cloak.runs.start_tick))}
    order = np.array([run_at[(track, int(p), int(s))] for track, layer in zip(cloak.tracks_cloaked, layers)
                      for p, s in zip(layer.notes.pitch, layer.notes.start_tick)])
    assert sorted(order) == list(range(cloak.num_runs))
    velocity = np.concatenate([layer.notes.velocity for layer in layers]).astype(float)
    assert np.all(velocity >= lower[order]) and np.all(velocity <= upper[order])
    # Uniform inside its bounds: the mean position is 1/2 (± 4 standard errors, 1/√(12 n));
    # rounding to whole velocities keeps the mean (the ends get half a step each).
    width = upper[order] - lower[order]
    position = ((velocity - lower[order]) / np.where(width > 0, width, 1))[width > 0]
    assert len(position) > 50 and abs(position.mean() - 0.5) < 4 / np.sqrt(12 * len(position))
    quietest = midi_cloak_at(score, 12, "medium", 0.0).tracks[4:]
    assert np.array_equal(np.concatenate([layer.notes.velocity for layer in quietest]).astype(float), lower[order])
    loudest = midi_cloak_at(score, 12, "medium", 1.0).tracks[4:]
    assert np.array_equal(np.concatenate([layer.notes.velocity for layer in loudest]).astype(float), upper[order])
    again = random_midi_cloak(score, 12, "medium", seed=1)
    assert not np.array_equal(velocity, np.concatenate([layer.notes.velocity for layer in again.tracks[4:]]))


def test_transposition_moves_every_note_by_its_shift_and_drops_what_leaves_the_keyboard():
    phrases = torch.zeros(3, 1, 2, 128)
    phrases[:, 0, 0, 60] = 1.0
    phrases[:, 0, 1, 127] = 0.5
    moved = transposed(phrases, torch.tensor([2, -3, 0]))
    assert moved[0, 0, 0, 62] == 1 and moved[1, 0, 0, 57] == 1 and moved[2, 0, 0, 60] == 1
    assert moved[0, 0, 1].sum() == 0  # 127 + 2 is off the keyboard
    assert moved[1, 0, 1, 124] == 0.5 and torch.equal(moved[2], phrases[2])


def test_the_fine_tune_starts_from_the_zoo_weights_and_is_paired_by_seed():
    from harmonycloak.zoo import load_zoo_model

    zoo = load_zoo_model("symphonynet").state_dict()
    scores = [_four_parts(), _four_parts(shift=2)]
    base, curve = finetuned("symphonynet", [], MidiMimicrySpec(), seed=0)
    assert curve == [] and all(torch.equal(base.state_dict()[k], zoo[k]) for k in zoo)
    frozen, _ = finetuned("symphonynet", scores, MidiMimicrySpec(steps=2, learning_rate=0.0), seed=0)
    assert all(torch.equal(frozen.state_dict()[k], zoo[k]) for k in zoo)  # lr 0: the zoo weights, exactly
    spec = MidiMimicrySpec(steps=3, batch_segments=2)
    first, curve_a = finetuned("symphonynet", scores, spec, seed=5)
    second, curve_b = finetuned("symphonynet", scores, spec, seed=5)
    assert len(curve_a) == 3 and curve_a == curve_b
    assert all(torch.equal(first.state_dict()[k], second.state_dict()[k]) for k in zoo)
    moved = [k for k in zoo if not torch.equal(first.state_dict()[k], zoo[k])]
    assert moved  # three steps at 1e-4 changed the weights
    # Training on the pieces lowers the model's loss on them.
    assert np.mean(piece_losses(first, scores)) < np.mean(piece_losses(base, scores))


def test_every_condition_of_a_family_is_measured_piece_by_piece():
    album = MidiAlbum([("a", _four_parts()), ("b", _four_parts(shift=1))], [("c", _four_parts(shift=3))])
    spec = MidiMimicrySpec(released=2, unreleased=1, steps=2, batch_segments=2, pgd_steps=1, bag_size=2,
                           models_per_round=2)
    logged = []
    runs, records = run_midi_mimicry("symphonynet", album, spec, seed=0, log=logged.append)
    assert [run.condition for run in runs] == ["base", *spec.methods]
    assert all(len(run.song_losses["released"]) == 2 and len(run.song_losses["unreleased"]) == 1 for run in runs)
    assert records["positive-wrong-notes"]["audibility"]["added_notes_per_note"] == 1.0
    cloaked = records["midi-cloak-whitebox"]["audibility"]
    assert cloaked["added_notes_per_note"] > 0 and cloaked["added_below_own_db"] > 0  # quieter than the music
    assert len(logged) == len(runs)


def test_the_gan_is_judged_by_the_bars_it_writes_and_symphonynet_by_its_loss():
    from harmonycloak.bench.unlearnability.midi_measures import style_distance
    from harmonycloak.cloak.model_input import scores_phrases

    album = MidiAlbum([("a", _four_parts()), ("b", _four_parts(shift=1))], [("c", _four_parts(shift=3))])
    spec = MidiMimicrySpec(released=2, unreleased=1, steps=2, batch_segments=2, generated_phrases=8,
                           methods=("none", "positive-wrong-notes"))
    runs, _ = run_midi_mimicry("musegan", album, spec, seed=0, log=lambda line: None)
    fds = {run.condition: run.measures["fd_artist"] for run in runs}
    assert set(fds) == {"base", "none", "positive-wrong-notes"} and all(math.isfinite(fd) and fd >= 0 for fd in fds.values())
    shares = {run.condition: run.measures["artist_share"] for run in runs}
    assert all(0.0 <= share <= 1.0 for share in shares.values())
    # The base model writes from the seed's latents: judged again, the same distance.
    from harmonycloak.zoo import load_zoo_model

    base = load_zoo_model("musegan")
    unreleased = scores_phrases([score for _, score in album.unreleased], base.phrase_layout)
    assert style_distance(base, "musegan", unreleased, 8, base.phrase_layout.steps_per_bar, 0) == pytest.approx(fds["base"])
    assert style_distance(base, "musegan", unreleased, 8, base.phrase_layout.steps_per_bar, 1) != pytest.approx(fds["base"])
    runs, _ = run_midi_mimicry("symphonynet", album, spec, seed=0, log=lambda line: None)
    assert all(run.measures == {} for run in runs)


def test_symphonynet_s_written_music_is_judged_where_the_suite_names_it():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.midi_measures import style_distance
    from harmonycloak.bench.unlearnability.suites import get_suite
    from harmonycloak.cloak.model_input import scores_phrases
    from harmonycloak.errors import SettingsError
    from harmonycloak.zoo import load_zoo_model

    assert get_suite("standard").midi_mimicry.style_judged == ("musegan",)  # its sampler's time: MuseGAN alone
    assert set(get_suite("full").midi_mimicry.style_judged) == {"musegan", "symphonynet"}
    named = adjusted_suite(get_suite("standard"), style_judged=("symphonynet",))
    assert named.midi_mimicry.style_judged == ("symphonynet",)
    with pytest.raises(SettingsError, match="only the MIDI families"):
        MidiMimicrySpec(style_judged=("ar-transformer",))
    album = MidiAlbum([("a", _four_parts()), ("b", _four_parts(shift=1))], [("c", _four_parts(shift=3))])
    spec = MidiMimicrySpec(released=2, unreleased=1, steps=2, batch_segments=2, generated_phrases=4,
                           methods=("none",), style_judged=("symphonynet",))
    runs, _ = run_midi_mimicry("symphonynet", album, spec, seed=0, log=lambda line: None)
    assert [run.condition for run in runs] == ["base", "none"]
    assert all(math.isfinite(run.measures["fd_artist"]) and 0.0 <= run.measures["artist_share"] <= 1.0
               for run in runs)
    # The base condition's FD is the zoo model's own continuation of the unreleased piece, measured again.
    base = load_zoo_model("symphonynet")
    unreleased = scores_phrases([score for _, score in album.unreleased], base.phrase_layout)
    steps_per_bar = base.phrase_layout.steps_per_bar
    assert style_distance(base, "symphonynet", unreleased, 4, steps_per_bar, 0) == pytest.approx(
        runs[0].measures["fd_artist"])
    runs, _ = run_midi_mimicry("musegan", album, spec, seed=0, log=lambda line: None)
    assert all(run.measures == {} for run in runs)  # not named: judged by its loss alone


def test_the_report_reads_midi_cells_against_the_wrong_notes_control_and_the_random_cloak():
    from harmonycloak.bench.unlearnability.score import ScoreInterval
    from harmonycloak.bench.unlearnability.threat_report import Score as Cell
    from harmonycloak.bench.unlearnability.threat_report import checks

    def cell(ps, low, high, beats=False):
        return Cell(ScoreInterval(ps, low, high, 3, 8), 0.15, beats, {})

    seen = {"none": cell(0, 0, 0), "positive-wrong-notes": cell(0.7, 0.6, 0.8),
            "random-midi-cloak": cell(0.05, 0.02, 0.08), "midi-cloak-whitebox": cell(0.15, 0.1, 0.2, beats=True),
            "midi-cloak-blackbox": cell(0.06, 0.03, 0.09)}
    text = "\n".join(checks({"mimicry": {"symphonynet": seen}}))
    assert "positive control" not in text
    assert "beats its random control: midi-cloak-whitebox" in text
    assert "within its random control (no measurable protection): midi-cloak-blackbox" in text
    weak = dict(seen, **{"positive-wrong-notes": cell(0.1, -0.1, 0.3)})
    assert "too weak" in "\n".join(checks({"mimicry": {"musegan": weak}}))


def test_suites_run_the_midi_families_in_t2_only():
    from harmonycloak.bench.unlearnability.suites import get_suite

    smoke = get_suite("smoke")
    assert {"symphonynet", "musegan"} <= set(smoke.families_for_threats)
    assert smoke.methods_of("mimicry", "symphonynet") == smoke.midi_mimicry.methods
    assert smoke.methods_of("scratch", "symphonynet") == ()
    assert smoke.methods_of("mimicry", "ar-transformer") == smoke.methods_for("mimicry")
    from harmonycloak.errors import SettingsError

    with pytest.raises(SettingsError, match="unknown MIDI protection method 'louder'"):
        MidiMimicrySpec(methods=("none", "louder"))


def test_the_command_line_s_midi_methods_replace_the_midi_families_own_with_their_controls():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.suites import get_suite

    smoke = get_suite("smoke")
    suite = adjusted_suite(smoke, methods=("midi-maxloss-whitebox", "masked-cue"))
    assert suite.midi_mimicry.methods == ("none", "random-midi-cloak", "quietest-midi-cloak", "midi-maxloss-whitebox")
    assert suite.threat_methods == ("none", "random-masked", "masked-cue")
    only_midi = adjusted_suite(smoke, methods=("positive-wrong-notes",))
    assert only_midi.midi_mimicry.methods == ("none", "positive-wrong-notes")
    assert only_midi.threat_methods == smoke.threat_methods  # audio keeps the suite's


def test_musegan_is_measured_by_its_discriminator_s_logit_which_orders_pieces_as_its_loss_does():
    from harmonycloak.cloak.model_input import score_phrases
    from harmonycloak.zoo import load_zoo_model

    model = load_zoo_model("musegan").eval()
    scores = [_four_parts(), wrong_notes(_four_parts(), seed=0), _four_parts(shift=5)]
    measured = piece_losses(model, scores)
    with torch.no_grad():
        logits = [float(model.discriminator_logits(model.features(score_phrases(s, model.phrase_layout))).mean())
                  for s in scores]
        losses = [float(model.generative_loss(score_phrases(s, model.phrase_layout)).mean()) for s in scores]
    assert measured == pytest.approx([-z for z in logits])
    # −log D = softplus(−z): per phrase the same order; with one phrase per piece, the pieces' order too
    assert all(len(score_phrases(s, model.phrase_layout)) == 1 for s in scores)
    assert np.argsort(measured).tolist() == np.argsort(losses).tolist()


def test_the_gap_of_a_negative_measure_is_positive_when_the_fine_tune_learnt():
    from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
    from harmonycloak.bench.unlearnability.threat_report import relative_gap
    from harmonycloak.bench.unlearnability.threats import AttackerRun

    runs = [AttackerRun("mimicry", "musegan", condition, 0, {"released": [value]})
            for condition, value in (("base", -21.0), ("none", -22.0))]
    # the logit fell by 1 from the base model's: (−21 − (−22)) / |−22|
    assert relative_gap([ThreatSeedResult(0, ["a"], [], 0.15, {}, runs)], "mimicry", "musegan") == pytest.approx(1 / 22)


def test_a_midi_cloak_must_clear_the_quietest_notes_as_well_as_the_random_ones():
    from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
    from harmonycloak.bench.unlearnability.threat_report import score_table
    from harmonycloak.bench.unlearnability.threats import AttackerRun

    def table(quietest_losses):
        results = []
        for seed in range(3):
            values = {"base": 2.0, "none": 1.0, "random-midi-cloak": 1.05, "midi-cloak-blackbox": 1.15}
            if quietest_losses is not None:
                values["quietest-midi-cloak"] = quietest_losses
            runs = [AttackerRun("mimicry", "symphonynet", condition, seed,
                                {"released": [value + 0.01 * seed, value + 0.02]})
                    for condition, value in values.items()]
            results.append(ThreatSeedResult(seed, ["a"], [], 0.15, {}, runs))
        methods = ("none", "random-midi-cloak", "quietest-midi-cloak", "midi-cloak-blackbox")
        return score_table(results, ("mimicry",), ("symphonynet",), lambda threat, family: methods,
                           n_resamples=200)["mimicry"]["symphonynet"]

    # PS: random 0.05, cloak 0.15; the quietest notes 0.17 (as measured) or not run
    assert table(None)["midi-cloak-blackbox"].beats_random_control
    cells = table(1.17)
    assert cells["quietest-midi-cloak"].interval.ps == pytest.approx(0.17, abs=0.01)
    assert not cells["midi-cloak-blackbox"].beats_random_control
    assert table(1.10)["midi-cloak-blackbox"].beats_random_control  # quietest 0.10: the cloak clears both


def test_the_reverse_gradient_candidate_is_measured_when_named_against_the_zoo_model(monkeypatch):
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.midi_mimicry import MIDI_MIMICRY_METHODS, release_pieces
    from harmonycloak.bench.unlearnability.suites import get_suite
    from harmonycloak.flows.midi import protect

    smoke = get_suite("smoke")
    assert "midi-reverse-gradient-whitebox" not in smoke.midi_mimicry.methods + MIDI_MIMICRY_METHODS
    suite = adjusted_suite(smoke, methods=("midi-reverse-gradient-whitebox",))
    assert suite.midi_mimicry.methods == ("none", "random-midi-cloak", "quietest-midi-cloak",
                                          "midi-reverse-gradient-whitebox")
    asked = []
    real = protect.cloak_score
    monkeypatch.setattr(protect, "cloak_score", lambda score, settings: asked.append(settings) or real(score, settings))
    spec = MidiMimicrySpec(pgd_steps=1, max_rounds=1)
    released, _, _ = release_pieces("midi-reverse-gradient-whitebox", [_four_parts()], "symphonynet", spec, seed=0)
    (settings,) = asked
    assert (settings.objective, settings.mode, settings.model.family) == ("reverse-gradient", "whitebox", "symphonynet")
    quietest, _, _ = release_pieces("quietest-midi-cloak", [_four_parts()], "symphonynet", spec, seed=0)
    assert added_notes([_four_parts()], released)["added_notes_per_note"] == pytest.approx(
        added_notes([_four_parts()], quietest)["added_notes_per_note"])  # the cloak's own notes, velocities chosen


def test_the_style_judge_tells_the_composer_from_the_zoos_corpus_and_the_base_gan_writes_the_corpus():
    from harmonycloak.bench.unlearnability.midi_measures import bar_segments, model_view, style_measures
    from harmonycloak.bench.unlearnability.midi_mimicry import composer_or_corpus_judge, load_midi_album
    from harmonycloak.cloak.model_input import scores_phrases
    from harmonycloak.metrics.style import label_shares
    from harmonycloak.zoo import load_zoo_model

    judge = composer_or_corpus_judge(seed=0)
    gan = load_zoo_model("musegan")
    album = load_midi_album(MidiMimicrySpec())
    unreleased = model_view(gan, scores_phrases([score for _, score in album.unreleased], gan.phrase_layout))
    # Bach's unreleased pieces, never fine-tuned on, are the composer's to the judge ...
    assert label_shares(judge, bar_segments(unreleased, 48, 4))["bach"] > 0.8
    # ... and the zoo GAN, trained on the corpus without Bach, writes bars it gives the corpus.
    assert style_measures(gan, "musegan", unreleased, 16, 48, seed=0, judge=judge)["artist_share"] < 0.2
