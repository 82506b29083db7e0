"""The threat-model benchmark: attackers start where they should, runs are paired, releases are
what their names say, and the report's scores follow the formulas on hand-made losses."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from harmonycloak.bench.unlearnability.releases import (
    ReleaseSpec,
    heldout_bag,
    release,
    release_key,
    split_method,
    with_controls,
)
from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult, conditions, corpus_size
from harmonycloak.bench.unlearnability.threat_report import checks, headline_threat_models, score_table
from harmonycloak.bench.unlearnability.threats import (
    FAMILY_GROUP,
    THREATS,
    AttackerRun,
    ScratchSize,
    ThreatSpec,
    attacker_model,
    attacker_recipe,
    train_attacker,
)
from harmonycloak.errors import SettingsError
from harmonycloak.optim.finetune import FinetuneRecipe
from harmonycloak.settings import WORKING_RATE_HZ, max_gain_db
from harmonycloak.zoo import load_zoo_model

RATE = 16_000
TINY = FinetuneRecipe(kind="full", steps=2, learning_rate=1e-3, batch_segments=2, segment_s=0.32,
                      augment_gain=False, augment_speed=False)


def melody(seconds: float = 1.28, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * RATE)) / RATE
    notes = rng.choice([220.0, 277.2, 329.6, 440.0], size=8)
    frequency = notes[(time * 8 / seconds).astype(int) % 8]
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def test_the_mimicry_attacker_starts_from_the_zoo_weights_and_the_scratch_one_from_its_seed():
    spec = ThreatSpec(scratch_preset="tiny")
    base = attacker_model("mimicry", "ar-gru", 0, spec)
    zoo = load_zoo_model("ar-gru")
    for (name, mine), (_, theirs) in zip(base.state_dict().items(), zoo.state_dict().items()):
        assert torch.equal(mine, theirs), name
    first, again, other = (attacker_model("scratch", "ar-gru", seed, spec) for seed in (3, 3, 4))
    weights = [next(iter(m.parameters())).detach() for m in (first, again, other, base)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert weights[0].shape != weights[3].shape or not torch.equal(weights[0], weights[3])


def test_the_second_codec_lm_reads_the_second_codec_in_both_threats():
    first, second = load_zoo_model("codec").state_dict(), load_zoo_model("codec-2").state_dict()
    assert not all(torch.equal(value, second[key]) for key, value in first.items())  # two codecs, trained apart
    for threat in THREATS:
        model = attacker_model(threat, "codec-lm-2", 0, ThreatSpec(scratch_preset="small"))
        assert model.family == "codec-lm"
        codec = model.codec.state_dict()
        assert all(torch.equal(value, second[key]) for key, value in codec.items()), threat
        assert not any(parameter.requires_grad for parameter in model.codec.parameters())
    assert FAMILY_GROUP["codec-lm-2"] == FAMILY_GROUP["codec-lm"]


def test_the_transformer_reading_100_db_is_a_next_frame_attacker_that_hears_under_the_zoo_s_floor():
    deep, zoo = attacker_model("mimicry", "ar-transformer-100db", 0, ThreatSpec()), load_zoo_model("ar-transformer")
    assert FAMILY_GROUP["ar-transformer-100db"] == FAMILY_GROUP["ar-transformer"] and deep.family == "ar-transformer"
    assert deep.config.frontend.log_floor == 1e-10 and zoo.config.frontend.log_floor == 1e-5
    assert not torch.equal(next(deep.parameters()), next(zoo.parameters()))  # trained apart
    # a sine 70 dB under full scale: 10^-7 in its band, at the zoo's floor (-1) and (log10(10^-7) + 5) / 5 = -0.4
    time = np.arange(RATE) / RATE
    quiet = torch.tensor(10 ** (-70 / 20) * np.sin(2 * np.pi * 1000.0 * time), dtype=torch.float32)[None]
    assert zoo.features(quiet).max().item() == pytest.approx(-1.0, abs=0.005)
    assert deep.features(quiet).max().item() == pytest.approx(-0.4, abs=0.03)


def test_a_family_given_its_own_t1_size_trains_at_it_and_the_others_at_the_suite_s():
    from harmonycloak.models.registry import build_model

    own = ScratchSize("ar-gru", "small", steps=3, learning_rate=5e-3)
    spec = ThreatSpec(scratch_preset="tiny", scratch=TINY, scratch_sizes=(own,))
    assert spec.recipe("scratch", "ar-gru") == replace(TINY, steps=3, learning_rate=5e-3)
    assert spec.recipe("scratch", "ar-tcn") == spec.recipe("scratch") == TINY
    assert spec.recipe("mimicry", "ar-gru") == spec.mimicry
    assert (spec.scratch_preset_of("ar-gru"), spec.scratch_preset_of("ar-tcn")) == ("small", "tiny")

    def parameters(model):
        return sum(p.numel() for p in model.parameters())

    sized, plain = attacker_model("scratch", "ar-gru", 0, spec), attacker_model("scratch", "ar-gru", 0, ThreatSpec(
        scratch_preset="tiny"))
    assert parameters(sized) == parameters(build_model("ar-gru", "small")) > parameters(plain)
    songs = [melody(seed=s) for s in range(2)]
    runs = [train_attacker("scratch", family, "none", songs, {"released": songs[:1]}, spec, 0)
            for family in ("ar-gru", "ar-tcn")]
    assert [len(run.curve) for run in runs] == [3, 2]  # each family its own steps
    with pytest.raises(SettingsError, match="given twice"):
        ThreatSpec(scratch_sizes=(own, replace(own, steps=9)))


def test_a_t1_attacker_given_a_log_mel_floor_hears_what_lies_under_the_preset_s_floor():
    from harmonycloak.bench.unlearnability.threats import scratch_sizes_text

    deep = ScratchSize("ar-gru", "tiny", steps=2, learning_rate=1e-3, log_floor_db=-100.0)
    spec = ThreatSpec(scratch_preset="tiny", scratch_sizes=(deep,))
    deeper, plain = attacker_model("scratch", "ar-gru", 0, spec), attacker_model("scratch", "ar-gru", 0, ThreatSpec(
        scratch_preset="tiny"))
    assert deeper.frontend.config.log_floor == pytest.approx(1e-10)  # 10^(-100 / 10)
    assert all(torch.equal(value, plain.state_dict()[key]) for key, value in deeper.state_dict().items())
    # a sine 70 dB under full scale puts 10^-7 into its band: at the floor (-1) for 10^-5 (50 dB of range);
    # log10(10^-7 + 10^-10) = -7.0, mapped by (x + 5) / 5 to -0.4, for 10^-10
    time = np.arange(RATE) / RATE
    quiet = torch.tensor(10 ** (-70 / 20) * np.sin(2 * np.pi * 1000.0 * time), dtype=torch.float32)[None]
    assert plain.features(quiet).max().item() == pytest.approx(-1.0, abs=0.005)
    assert deeper.features(quiet).max().item() == pytest.approx(-0.4, abs=0.03)
    assert "ar-gru: `tiny`, 2 steps at 0.001, log-mel floor -100 dB" in scratch_sizes_text(spec)
    diffusion = ThreatSpec(scratch_preset="tiny", scratch_sizes=(replace(deep, family="mel-diffusion"),))
    assert attacker_model("scratch", "mel-diffusion", 0, diffusion).features(quiet).max().item() == pytest.approx(
        -0.4, abs=0.03)
    codec_lm = ThreatSpec(scratch_preset="tiny", scratch_sizes=(replace(deep, family="codec-lm"),))
    with pytest.raises(SettingsError, match="reads no log-mel front end of its own"):
        attacker_model("scratch", "codec-lm", 0, codec_lm)


def test_a_t1_diffusion_attacker_may_be_measured_from_a_share_of_its_schedule_and_no_other_family_can():
    from harmonycloak.bench.unlearnability.threats import scratch_sizes_text, song_losses

    upper = ScratchSize("mel-diffusion", "tiny", steps=2, learning_rate=1e-3, probe_timestep_from=0.5)
    spec = ThreatSpec(scratch_preset="tiny", scratch_sizes=(upper,))
    measured, plain = attacker_model("scratch", "mel-diffusion", 0, spec), attacker_model(
        "scratch", "mel-diffusion", 0, ThreatSpec(scratch_preset="tiny"))
    assert (measured.config.evaluation_timestep_from, plain.config.evaluation_timestep_from) == (0.5, 0.0)
    assert all(torch.equal(value, plain.state_dict()[key]) for key, value in measured.state_dict().items())
    songs = [melody(seed=0)]
    # the same weights measured on the noisier half of the schedule only: another loss of the same song
    assert song_losses(measured.eval(), songs) != song_losses(plain.eval(), songs)
    assert ("mel-diffusion: `tiny`, 2 steps at 0.001, measured at the timesteps from 0.5 of its schedule on"
            in scratch_sizes_text(spec))
    gru = ThreatSpec(scratch_preset="tiny", scratch_sizes=(replace(upper, family="ar-gru"),))
    with pytest.raises(SettingsError, match="ar-gru's attacker is no diffusion model"):
        attacker_model("scratch", "ar-gru", 0, gru)


def test_a_mimicry_run_without_songs_measures_the_base_model_itself():
    songs = [melody(seed=1)]
    spec = ThreatSpec(mimicry=TINY)
    run = train_attacker("mimicry", "ar-tcn", "base", [], {"released": songs}, spec, 0)
    from harmonycloak.bench.unlearnability.threats import song_losses

    assert run.song_losses["released"] == pytest.approx(song_losses(load_zoo_model("ar-tcn"), songs))


def test_runs_of_one_seed_are_paired_and_a_seed_changes_them():
    songs = [melody(seed=s) for s in range(3)]
    spec = ThreatSpec(scratch_preset="tiny", scratch=TINY)
    probes = {"released": songs[:1]}
    one = train_attacker("scratch", "ar-transformer", "none", songs, probes, spec, 5)
    same = train_attacker("scratch", "ar-transformer", "none", songs, probes, spec, 5)
    other = train_attacker("scratch", "ar-transformer", "none", songs, probes, spec, 6)
    assert one.curve == same.curve and one.song_losses == same.song_losses
    assert one.curve != other.curve
    # the same seed on other songs: the same initial weights, so the first step's loss differs only by the data
    louder = train_attacker("scratch", "ar-transformer", "m", [2 * s for s in songs], probes, spec, 5)
    assert louder.curve[0] != one.curve[0]


def test_conditions_put_each_attack_s_references_before_the_first_method_that_needs_them():
    assert conditions("mimicry", ("none", "random-dominant", "random-dominant+mp3-128k")) == [
        "base", "none", "random-dominant", "none+mp3-128k", "random-dominant+mp3-128k"]
    assert conditions("scratch", ("none", "x+aac-128k")) == ["unseen", "none", "none+aac-128k", "unseen+aac-128k",
                                                             "x+aac-128k"]


def test_corpus_size_makes_the_released_songs_the_asked_fraction():
    assert corpus_size(12, 0.15) == 68  # 12 / 80 = 15 %
    assert corpus_size(3, 0.5) == 3


def test_release_keys_follow_what_the_release_depends_on():
    assert release_key("dominant-whitebox", "ar-gru") == "ar-gru"
    assert release_key("positive-linf-em", "codec-lm") == "codec-lm"
    assert release_key("masked-blackbox", "ar-gru") == release_key("masked-blackbox", "ar-tcn") == "next-frame"
    assert release_key("random-masked", "ar-gru") == "any"
    assert split_method("dominant-blackbox+mp3-128k") == ("dominant-blackbox", "mp3-128k")


@pytest.mark.parametrize(("method", "expected_snr_db"), (("positive-white-10db", 10.0), ("positive-white-0db", 0.0)))
def test_positive_white_noise_is_at_its_snr_and_none_is_the_song_itself(method, expected_snr_db):
    songs = [0.1 * melody(seconds=2.0, seed=2)]  # quiet enough that 0 dB noise is not clipped
    spec = ReleaseSpec()
    assert np.array_equal(release("none", songs, "ar-gru", 0, spec).songs[0], songs[0])
    noisy = release(method, songs, "ar-gru", 0, spec).songs[0]
    snr_db = 10 * math.log10(np.sum(songs[0].astype(np.float64) ** 2) / np.sum((noisy - songs[0]) ** 2))
    assert snr_db == pytest.approx(expected_snr_db, abs=0.2)


def test_random_controls_are_deterministic_real_noise_under_their_bounds():
    songs = [melody(seconds=1.28, seed=3), melody(seconds=1.28, seed=4)]
    spec = ReleaseSpec()
    first = release("random-dominant", songs, "ar-gru", 7, spec).songs
    again = release("random-dominant", songs, "ar-gru", 7, spec).songs
    other = release("random-dominant", songs, "ar-gru", 8, spec).songs
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    noise = first[0] - songs[0]
    assert 0 < np.sum(noise ** 2) < np.sum(songs[0] ** 2)  # heard, and quieter than the music
    assert not np.array_equal(first[0], other[0])


def test_the_masked_releases_and_their_random_control_take_the_suite_s_bound_rule():
    from dataclasses import replace

    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.releases import _settings
    from harmonycloak.bench.unlearnability.suites import get_suite
    from harmonycloak.settings import ProtectionSettings

    standard = get_suite("standard")
    band = adjusted_suite(standard, bound_rule="band").threat_cloak
    assert band.bound_rule == "band" and standard.threat_cloak.bound_rule == "bin"
    assert _settings("masked", 0, band).bound_rule == "band"  # the optimised masked releases
    assert _settings("dominant", 0, band).bound_rule == ProtectionSettings.bound_rule  # no other cloak has one
    songs = [melody(seconds=1.28, seed=3)]
    energy = {rule: np.sum((release("random-masked", songs, "ar-gru", 7, replace(ReleaseSpec(), bound_rule=rule))
                            .songs[0] - songs[0]) ** 2) for rule in ("bin", "band")}
    assert 0 < energy["band"] < energy["bin"]  # the control is drawn inside the band rule's (smaller) bounds


def test_the_default_method_is_what_protect_does_unasked_whatever_the_suite_s_rule_and_effort():
    from dataclasses import replace

    from harmonycloak.settings import DEFAULT_PROTECTION, ZOO_SURROGATES

    songs = [melody(seconds=1.28, seed=3), melody(seconds=1.28, seed=4)]
    suite_spec = ReleaseSpec(bound_rule="bin", pgd_steps=20, max_rounds=3)  # the standard suite's rule, the paper's effort
    assert release_key("default", "ar-gru") == release_key("default", "codec-lm") == "any"  # it reads no attacker
    # its control is the product's cloak's random coefficients under the product's rule (band-pool), not the
    # suite's bin rule's random masked noise
    control = release("random-default", songs, "ar-gru", 7, suite_spec).songs
    named = release("random-masked-gain-default", songs, "ar-gru", 7, suite_spec).songs
    masked = release("random-masked", songs, "ar-gru", 7, suite_spec).songs
    assert all(np.array_equal(a, b) for a, b in zip(control, named))
    assert not any(np.array_equal(a, b) for a, b in zip(control, masked))
    assert DEFAULT_PROTECTION["audio"] == {"cloak": "masked-gain", "objective": "reverse-gradient"}
    released = release("default", songs, "codec-lm", 0, suite_spec)
    assert released.summary["objective"] == "reverse-gradient"
    assert released.summary["surrogates"] == list(ZOO_SURROGATES["reverse-gradient"])  # the same models, any attacker
    assert released.summary["surrogates"] == ["ar-transformer", "ar-gru", "ar-tcn", "codec-lm"]
    assert len(released.summary["rounds"]["protected_loss"]) == 1  # the measured effort: one round, not the suite's 3
    noise = released.songs[0] - songs[0]
    assert 0 < np.sum(noise**2) < 0.1 * np.sum(songs[0] ** 2)


@pytest.mark.parametrize("method, families", [  # the families of the models read, in order
    ("default-next-frame", ["ar-transformer", "ar-gru", "ar-tcn"]),
    ("default-two-codecs", ["ar-transformer", "ar-gru", "ar-tcn", "codec-lm", "codec-lm"]),  # codec-lm, codec-lm-2
    ("default-100db", ["ar-transformer", "ar-gru", "ar-tcn", "codec-lm"]),  # ar-transformer-100db first
])
def test_the_default_reading_other_zoo_models_is_the_default_with_those_models(method, families):
    from harmonycloak.bench.unlearnability.releases import RANDOM_CONTROL

    songs = [melody(seconds=1.28, seed=3)]
    assert release_key(method, "codec-lm") == "any"
    assert RANDOM_CONTROL[method] == "random-default"
    released = release(method, songs, "ar-gru", 0, ReleaseSpec())
    assert released.summary["surrogates"] == families
    assert released.summary["objective"] == "reverse-gradient" and len(released.summary["rounds"]["protected_loss"]) == 1
    assert not np.array_equal(released.songs[0], release("default", songs, "ar-gru", 0, ReleaseSpec()).songs[0])


def test_the_masked_cloak_s_random_control_is_loudness_neutral_as_its_optimised_noise_is(monkeypatch):
    from harmonycloak.cloak.loudness import k_weighted
    from harmonycloak.flows.audio import protect

    songs = [melody(seconds=1.28, seed=3), melody(seconds=1.28, seed=4)]
    music = np.concatenate(songs)
    heard_music = k_weighted(music[None], RATE)[0]
    block, hop = round(0.4 * RATE), round(0.1 * RATE)  # the loudness measure's blocks

    def block_change_db(released) -> float:
        heard = k_weighted(np.concatenate(released)[None], RATE)[0]
        return float(np.mean([abs(10 * np.log10(np.sum(heard[s : s + block] ** 2)
                                                 / np.sum(heard_music[s : s + block] ** 2)))
                              for s in range(0, len(music) - block + 1, hop)]))

    neutral = block_change_db(release("random-masked", songs, "ar-gru", 7, ReleaseSpec()).songs)
    monkeypatch.setattr(protect, "loudness_neutral", lambda noise, *args, **kwargs: noise)
    as_drawn = block_change_db(release("random-masked", songs, "ar-gru", 7, ReleaseSpec()).songs)
    # the same noise written as drawn moves the blocks' K-weighted power several times as much (0.24 dB
    # against 0.07: what is left is the interpolation of each block's share between block centres)
    assert neutral < 0.1 and as_drawn > 2.5 * neutral


def test_the_black_box_bag_never_holds_the_attacker_s_group():
    spec = ReleaseSpec(bag_size=4, bag_preset="tiny")
    for family in ("ar-transformer", "codec-lm", "contrastive"):
        bag = heldout_bag(family, spec, 0)
        assert len(bag) == 4
        assert all(FAMILY_GROUP[model.family] != FAMILY_GROUP[family] for model in bag)


def _run(threat, family, condition, seed, losses):
    return AttackerRun(threat, family, condition, seed, {"released": list(losses)})


def test_scores_follow_the_formulas_and_the_random_control_decides():
    results = []
    for seed, offset in enumerate((0.0, 0.01)):  # a per-seed offset shared by every condition cancels
        runs = [_run("mimicry", "ar-gru", "base", seed, [1.0 + offset, 1.2 + offset]),
                _run("mimicry", "ar-gru", "none", seed, [0.2 + offset, 0.4 + offset]),
                _run("mimicry", "ar-gru", "positive-white-10db", seed, [0.8 + offset, 1.0 + offset]),
                _run("mimicry", "ar-gru", "random-dominant", seed, [0.2 + offset, 0.4 + offset]),
                _run("mimicry", "ar-gru", "dominant-blackbox", seed, [0.6 + offset, 0.8 + offset]),
                _run("scratch", "ar-gru", "unseen", seed, [0.5 + offset, 0.7 + offset]),
                _run("scratch", "ar-gru", "none", seed, [0.3 + offset, 0.5 + offset]),
                _run("scratch", "ar-gru", "positive-white-10db", seed, [0.45 + offset, 0.65 + offset]),
                _run("scratch", "ar-gru", "random-dominant", seed, [0.35 + offset, 0.55 + offset]),
                _run("scratch", "ar-gru", "dominant-blackbox", seed, [0.35 + offset, 0.55 + offset])]
        results.append(ThreatSeedResult(seed, ["a", "b"], [], 0.15, {}, runs))
    methods = ("none", "positive-white-10db", "random-dominant", "dominant-blackbox")
    table = score_table(results, ("scratch", "mimicry"), ("ar-gru",), lambda threat, family: methods, n_resamples=200)
    mimicry, scratch = table["mimicry"]["ar-gru"], table["scratch"]["ar-gru"]
    # T2: (L_ft,m − L_ft,none) / (L_base − L_ft,none) = 0.4 / 0.8, 0.6 / 0.8; gap (1.1 − 0.3) / 0.3
    assert mimicry["dominant-blackbox"].interval.ps == pytest.approx(0.5)
    assert mimicry["positive-white-10db"].interval.ps == pytest.approx(0.75)
    assert mimicry["none"].interval.ps == pytest.approx(0.0)
    assert mimicry["none"].gap == pytest.approx(np.mean([0.8 / 0.3, 0.8 / 0.31]))
    assert mimicry["dominant-blackbox"].beats_random_control  # 0.5 against the control's 0
    # T1: (0.45 − 0.3) / (0.5 − 0.3) = 0.75 for the positive; the cloak equals its control: no win
    assert scratch["positive-white-10db"].interval.ps == pytest.approx(0.75)
    assert scratch["dominant-blackbox"].interval.ps == pytest.approx(0.25)
    assert not scratch["dominant-blackbox"].beats_random_control
    headline = headline_threat_models(table)
    assert headline["mimicry"]["ar-gru"]["dominant-blackbox"]["beats_random_control"] is True
    assert headline["scratch"]["ar-gru"]["none"]["ps"] == pytest.approx(0.0)
    text = "\n".join(checks(table))
    assert "scratch / ar-gru: within its random control" in text and "mimicry / ar-gru: beats" in text
    # without the positive control the report says it was not run, and still compares with the random control
    without = score_table(results, ("mimicry",), ("ar-gru",),
                          lambda threat, family: ("none", "random-dominant", "dominant-blackbox"), n_resamples=200)
    text = "\n".join(checks(without))
    assert "positive control was not run" in text and "mimicry / ar-gru: beats" in text and "not seen" not in text


def test_a_null_control_that_reads_an_effect_makes_the_family_unreadable_whatever_the_positive_control_read():
    from harmonycloak.bench.unlearnability.score import ScoreInterval
    from harmonycloak.bench.unlearnability.threat_report import Score, null_drifts

    def score(ps, low, high, beats=False):
        return Score(ScoreInterval(ps, low, high, 3, 4), 1.2, beats, {})

    scores = {"none": score(0.0, 0.0, 0.0), "positive-white-10db": score(0.52, 0.06, 1.95),
              "random-dominant": score(-0.03, -0.18, 0.04), "dominant-blackbox": score(0.4, 0.2, 0.6, beats=True)}
    text = "\n".join(checks({"scratch": {"contrastive": scores}}))
    assert not null_drifts(scores) and "null control" not in text and "beats its random control" in text
    # inaudible noise scoring like the positive control: the runs' drift, not the noise, moved the loss
    scores["random-dominant"] = score(0.81, 0.30, 2.26)
    text = "\n".join(checks({"scratch": {"contrastive": scores}}))
    assert null_drifts(scores) and "null control) reads PS 0.81 [0.30, 2.26]" in text
    assert "too weak" in text and "beats" not in text and "within its random control" not in text
    for low, high, drifts in ((-0.49, 0.49, False), (-0.5, 0.1, True), (-0.1, 0.5, True), (-3.88, 1.71, True)):
        scores["random-dominant"] = score(0.0, low, high)
        assert null_drifts(scores) is drifts
    del scores["random-dominant"]  # not run: nothing to say
    assert not null_drifts(scores) and "beats its random control" in "\n".join(checks({"scratch": {"contrastive": scores}}))


def test_a_method_run_on_more_seeds_than_the_rest_is_scored_on_every_seed_that_ran_it():
    from harmonycloak.bench.unlearnability.threat_report import relative_gap, score_cell

    results = []
    for seed, positive in enumerate((0.6, 0.7, 0.8, 0.9)):
        runs = [_run("mimicry", "contrastive", "base", seed, [1.0]), _run("mimicry", "contrastive", "none", seed, [0.5]),
                _run("mimicry", "contrastive", "positive-white-10db", seed, [positive])]
        if seed < 2:  # the cloak ran on the first two seeds only
            runs.append(_run("mimicry", "contrastive", "masked-whitebox", seed, [0.5 + 0.1 * seed]))
        results.append(ThreatSeedResult(seed, ["a"], [], 0.15, {}, runs))
    positive = score_cell(results, "mimicry", "contrastive", "positive-white-10db", n_resamples=50)
    assert positive.n_seeds == 4 and positive.ps == pytest.approx((0.75 - 0.5) / 0.5)  # mean of 0.6 … 0.9 is 0.75
    cloak = score_cell(results, "mimicry", "contrastive", "masked-whitebox", n_resamples=50)
    assert cloak.n_seeds == 2 and cloak.ps == pytest.approx(0.05 / 0.5)
    assert score_cell(results, "mimicry", "contrastive", "masked-blackbox") is None  # no seed ran it
    assert relative_gap(results, "mimicry", "contrastive") == pytest.approx(1.0)  # (1.0 − 0.5) / 0.5
    assert np.isnan(relative_gap(results, "scratch", "contrastive"))
    from harmonycloak.bench.unlearnability.threat_report import seeds_text

    for result in results[:3]:  # three seeds of another family beside the four of the contrastive one
        result.runs += [_run("mimicry", family, "none", result.seed, [0.5]) for family in ("ar-gru", "codec-lm")]
    results.append(ThreatSeedResult(9, ["a"], [], 0.15, {}, [_run("mimicry", "ar-tcn", "none", 9, [0.5])]))
    assert seeds_text(results[:3]) == "3 seeds"
    assert seeds_text(results) == "3 seeds (contrastive T2: 4, ar-tcn T2: 1)"


def test_a_loud_positive_control_lets_the_suite_compare_where_10_db_is_not_seen():
    from harmonycloak.bench.unlearnability.score import ScoreInterval
    from harmonycloak.bench.unlearnability.threat_report import Score

    def score(ps, low, high, beats=False):
        return Score(ScoreInterval(ps, low, high, 3, 4), 0.8, beats, {})

    scores = {"none": score(0.0, 0.0, 0.0), "positive-white-10db": score(0.3, 0.2, 0.4),
              "positive-white-0db": score(0.9, 0.8, 1.0), "random-masked": score(0.1, 0.0, 0.2),
              "masked-cue": score(0.5, 0.3, 0.7, beats=True)}
    text = "\n".join(checks({"scratch": {"ar-gru": scores}}))
    assert "at 0 dB it is (PS 0.90 [0.80, 1.00])" in text and "beats its random control: masked-cue" in text
    scores["positive-white-0db"] = score(0.45, 0.3, 0.6)  # under 0.5: neither control is seen
    text = "\n".join(checks({"scratch": {"ar-gru": scores}}))
    assert "at 0 dB SNR 0.45 [0.30, 0.60]" in text and "too weak" in text and "beats" not in text
    del scores["positive-white-10db"]  # the loud control alone
    text = "\n".join(checks({"scratch": {"ar-gru": scores}}))
    assert "10 dB SNR was not run, and at 0 dB it is not seen (PS 0.45 [0.30, 0.60])" in text and "beats" not in text
    scores["positive-white-0db"] = score(0.9, 0.8, 1.0)
    text = "\n".join(checks({"scratch": {"ar-gru": scores}}))
    assert "at 0 dB it is seen (PS 0.90 [0.80, 1.00])" in text and "beats its random control: masked-cue" in text


def test_the_style_score_is_the_share_of_the_fine_tune_s_move_toward_the_artist_that_a_method_undid():
    from harmonycloak.bench.unlearnability.threat_report import markdown_tables

    results = []
    for seed, (base, none, cloaked) in enumerate(((10.0, 4.0, 7.0), (12.0, 6.0, 6.0))):
        runs = []
        for condition, fd in (("base", base), ("none", none), ("dominant-blackbox", cloaked),
                              ("random-dominant", none)):
            run = _run("mimicry", "ar-gru", condition, seed, [1.0 if condition == "base" else 0.5])
            run.measures["fd_artist"] = fd
            run.measures["artist_share"] = 1.0 - fd / 20.0  # closer to the artist: more of it sounds like the artist
            runs.append(run)
        results.append(ThreatSeedResult(seed, ["a"], [], 0.15, {}, runs))
    methods = ("none", "random-dominant", "dominant-blackbox")
    table = score_table(results, ("mimicry",), ("ar-gru",), lambda threat, family: methods, n_resamples=50)
    cloaked = table["mimicry"]["ar-gru"]["dominant-blackbox"]
    # means over seeds: base 11, none 5, cloaked 6.5 → (6.5 − 5) / (11 − 5) = 0.25
    assert cloaked.fd_artist == pytest.approx(6.5) and cloaked.fd_ps == pytest.approx(0.25)
    # by seed 0.5 and 0.0: resampling the two seeds gives 0.5, 0.25 or 0.0, so the interval is [0, 0.5]
    assert cloaked.fd_ci == pytest.approx((0.0, 0.5)) and cloaked.share_ci == pytest.approx((0.0, 0.5))
    assert table["mimicry"]["ar-gru"]["none"].fd_ps == pytest.approx(0.0)
    # the share moves the other way, and its score is the same share of the move: (0.675 − 0.75) / (0.45 − 0.75) = 0.25
    assert cloaked.artist_share == pytest.approx(0.675) and cloaked.share_ps == pytest.approx(0.25)
    judge = {"classes": ["a", "b"], "artist_recall": 0.8, "others_as_artist": 0.1, "balanced_accuracy": 0.7,
             "held_out_windows": 40}
    text = "\n".join(markdown_tables(table, judge))
    assert "| 6.500 (+0.25 [+0.00, +0.50]) | 0.68 (+0.25 [+0.00, +0.50]) |" in text and "80 % of the artist's unreleased windows" in text
    for result in results:  # where the base model's music was not measured the score is undefined, not wrong
        result.run("mimicry", "ar-gru", "base").measures.clear()
    assert np.isnan(score_table(results, ("mimicry",), ("ar-gru",), lambda threat, family: methods,
                                n_resamples=50)["mimicry"]["ar-gru"]["dominant-blackbox"].fd_ps)


def test_the_report_names_the_attackers_the_default_knows_by_kind_only():
    from harmonycloak.bench.unlearnability.threat_report import _weights_unread_text

    # the default reads the zoo's codec-lm: of codec-lm-2 it knows the kind, of mel-diffusion not even that
    text = _weights_unread_text(("codec-lm", "codec-lm-2", "mel-diffusion", "musegan"))
    assert "`codec-lm-2`" in text and "`codec-lm`" not in text and "diffusion" not in text
    assert _weights_unread_text(("codec-lm", "mel-diffusion", "contrastive")) == ""


def test_the_visqol_column_is_the_mean_over_seeds_and_its_note_appears_only_where_it_was_measured():
    from harmonycloak.bench.unlearnability.threat_experiment import ReleaseRecord
    from harmonycloak.bench.unlearnability.threat_report import markdown_tables

    def results(visqol_by_seed):
        out = []
        for seed, visqol in enumerate(visqol_by_seed):
            sound = {"snr_db": 20.0 + seed, "nmr_p95_db": -10.0, "loudness_change_lu": 0.0}
            if visqol is not None:
                sound["visqol_mos"] = visqol
            releases = {"random-dominant": ReleaseRecord({"any": dict(sound)}, {"any": 1.0}, {"any": {}})}
            runs = [_run("mimicry", "ar-gru", "base", seed, [1.0]), _run("mimicry", "ar-gru", "none", seed, [0.5]),
                    _run("mimicry", "ar-gru", "random-dominant", seed, [0.6])]
            out.append(ThreatSeedResult(seed, ["a"], [], 0.15, releases, runs))
        return out

    methods = ("none", "random-dominant")
    table = score_table(results([4.2, 4.4]), ("mimicry",), ("ar-gru",), lambda threat, family: methods, n_resamples=50)
    text = "\n".join(markdown_tables(table))
    # SNR 20 and 21 dB average to 20.5; ViSQOL 4.2 and 4.4 to 4.30, printed with two decimals
    assert "| 20.5 | -10.0 | +0.00 | 4.30 |" in text and "ViSQOL (v3, audio mode" in text and "16 kHz mono" in text
    table = score_table(results([None, None]), ("mimicry",), ("ar-gru",), lambda threat, family: methods,
                        n_resamples=50)
    text = "\n".join(markdown_tables(table))
    assert "| 20.5 | -10.0 | +0.00 | — |" in text and "ViSQOL (v3" not in text


def test_runs_of_different_parts_merge_into_one_result_per_seed_and_disagreeing_duplicates_are_refused():
    from harmonycloak.bench.unlearnability.threat_experiment import ReleaseRecord, merge_seed_results
    from harmonycloak.errors import SettingsError

    def result(seed, threat, key):
        record = ReleaseRecord({key: {"snr_db": 10.0}}, {key: 1.0}, {key: {}})
        return ThreatSeedResult(seed, ["a"], ["b"], 0.15, {"masked-blackbox": record},
                                [_run(threat, "ar-gru", "none", seed, [0.5])],
                                {"artist_recall": 0.8} if threat == "mimicry" else {})

    merged = merge_seed_results([result(1, "scratch", "next-frame"), result(0, "mimicry", "codec"),
                                 result(1, "mimicry", "codec"), result(0, "scratch", "next-frame")])
    assert [r.seed for r in merged] == [0, 1]
    for seed_result in merged:
        assert {run.threat for run in seed_result.runs} == {"scratch", "mimicry"}
        assert set(seed_result.releases["masked-blackbox"].audibility) == {"next-frame", "codec"}
        assert seed_result.artist_classifier == {"artist_recall": 0.8}
    # a cell both runs measured alike is kept once, with the measures of both
    first, second = result(0, "mimicry", "x"), result(0, "mimicry", "y")
    first.runs[0].measures, second.runs[0].measures = {"fd_artist": 0.2}, {"artist_share": 0.7}
    (both,) = merge_seed_results([first, second])
    assert len(both.runs) == 1 and both.runs[0].measures == {"fd_artist": 0.2, "artist_share": 0.7}
    rounded = result(0, "scratch", "y")  # another thread count's rounding of the same training: one measurement
    rounded.runs[0].song_losses = {"released": [0.5 * (1 + 2e-4)]}  # as the contrastive fine-tune after MP3 rounds
    (kept,) = merge_seed_results([result(0, "scratch", "x"), rounded])
    assert kept.runs[0].song_losses == {"released": [0.5]}  # the first run's
    other = result(0, "scratch", "y")
    other.runs[0].song_losses = {"released": [0.5 * (1 + 1e-3)]}  # as a change of the random control's writing moved it
    with pytest.raises(SettingsError, match="two runs of scratch / ar-gru / none with different losses"):
        merge_seed_results([result(0, "scratch", "x"), other])


def test_a_combined_report_keeps_the_methods_and_families_its_runs_named_beyond_the_suite_s():
    from harmonycloak.bench.unlearnability.benchmark import with_methods_ran
    from harmonycloak.bench.unlearnability.suites import get_suite

    standard = get_suite("standard")
    assert "ar-transformer" in standard.families_for_threats
    runs = [_run("mimicry", "ar-transformer", condition, 0, [0.5])
            for condition in ("base", "none", "masked-embedding-shift", "none+mp3-128k", "random-masked")]
    suite = with_methods_ran(standard, [ThreatSeedResult(0, ["a"], [], 0.15, {}, runs)])
    assert suite.threat_methods == standard.threat_methods + ("masked-embedding-shift",)
    assert suite.families_for_threats == standard.families_for_threats
    assert with_methods_ran(standard, [ThreatSeedResult(0, ["a"], [], 0.15, {}, runs[:2])]) is standard
    # T2's own method run in T1 too (an earlier suite ran it in both): it joins both threats' methods
    style = [_run(threat, "ar-transformer", "positive-other-music", 0, [0.5]) for threat in ("scratch", "mimicry")]
    assert "positive-other-music" not in standard.methods_for("scratch")
    suite = with_methods_ran(standard, [ThreatSeedResult(0, ["a"], [], 0.15, {}, style)])
    assert "positive-other-music" in suite.methods_for("scratch")
    assert suite.methods_for("mimicry").count("positive-other-music") == 1 and not suite.mimicry_methods
    assert with_methods_ran(standard, [ThreatSeedResult(0, ["a"], [], 0.15, {}, style[1:])]) is standard
    # a family the suite does not train (an attacker named with --families) comes after the suite's own
    others = [_run("mimicry", family, "none", 0, [0.5]) for family in ("codec-lm-2", "ar-transformer", "codec-lm-2")]
    suite = with_methods_ran(standard, [ThreatSeedResult(0, ["a"], [], 0.15, {}, others)])
    assert suite.families_for_threats == standard.families_for_threats + ("codec-lm-2",)


def test_a_seed_result_round_trips_through_json():
    import json

    result = ThreatSeedResult(3, ["a"], ["b"], 0.15, {}, [_run("scratch", "ar-gru", "none", 3, [0.5])])
    again = ThreatSeedResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result


def test_a_method_brings_its_random_control_and_none_with_it():
    assert with_controls(("masked-cue", "cue-10db+mp3-128k")) == (
        "none", "random-masked", "masked-cue", "positive-white-10db", "cue-10db", "cue-10db+mp3-128k")


def test_other_music_is_released_in_place_of_the_songs_cut_or_repeated_to_their_length():
    songs = [melody(seconds=1.0, seed=1), melody(seconds=1.0, seed=2)]
    longer, shorter = melody(seconds=1.5, seed=3), melody(seconds=0.4, seed=4)
    released = release("positive-other-music", songs, "ar-gru", 0, ReleaseSpec(), [longer, shorter]).songs
    assert [len(song) for song in released] == [len(song) for song in songs]
    assert np.array_equal(released[0], longer[: len(songs[0])])  # cut to the song's length
    assert np.array_equal(released[1][: len(shorter)], shorter)  # repeated from its start
    assert np.array_equal(released[1][len(shorter): 2 * len(shorter)], shorter)
    with pytest.raises(SettingsError, match="needs 2 songs of other music"):
        release("positive-other-music", songs, "ar-gru", 0, ReleaseSpec(), [longer])


def test_the_style_measures_are_read_only_where_other_music_in_place_of_the_album_moves_them():
    from harmonycloak.bench.unlearnability.score import ScoreInterval
    from harmonycloak.bench.unlearnability.threat_report import Score, style_lines

    def other(fd_ps, fd_ci, share_ps, share_ci):
        return {"positive-other-music": Score(ScoreInterval(1.0, 0.9, 1.1, 3, 4), 0.1, False, {},
                                              fd_ps=fd_ps, fd_ci=fd_ci, share_ps=share_ps, share_ci=share_ci)}

    assert style_lines({}, "ar-gru") == []
    assert style_lines(other(math.nan, (math.nan, math.nan), math.nan, (math.nan, math.nan)), "ar-gru") == []  # no sampler
    (both,) = style_lines(other(0.9, (0.6, 1.2), 0.7, (0.1, 1.0)), "ar-gru")
    assert both.startswith("the FD to the artist and the artist share see other music")
    (one,) = style_lines(other(0.9, (-0.1, 1.2), 0.7, (0.1, 1.0)), "ar-gru")  # the FD's interval reaches 0: not seen
    assert one.startswith("the artist share sees") and "FD style PS +0.90 [-0.10, +1.20]" in one
    (neither,) = style_lines(other(0.4, (0.2, 0.6), -0.3, (-1.0, 0.2)), "ar-gru")  # under 0.5; the wrong way
    assert "not read" in neither


def test_a_gan_whose_losses_cannot_be_read_is_judged_by_the_style_of_what_it_writes():
    from harmonycloak.bench.unlearnability.score import ScoreInterval
    from harmonycloak.bench.unlearnability.threat_report import Score, checks

    def cell(ps, fd_ps, fd_ci, share=math.nan):
        return Score(ScoreInterval(ps, ps - 0.1, ps + 0.1, 3, 8), 0.05, False, {}, fd_artist=3.0 + fd_ps, fd_ps=fd_ps,
                     fd_ci=fd_ci, artist_share=share)

    scores = {"none": cell(0.0, 0.0, (0.0, 0.0)),
              "positive-wrong-notes": cell(-4.0, 0.8, (0.3, 1.4)),  # the loss says nothing; the FD sees it
              "random-midi-cloak": cell(0.0, 0.05, (-0.1, 0.2)),
              "quietest-midi-cloak": cell(0.0, 0.1, (0.0, 0.25)),
              "midi-cloak-whitebox": cell(0.0, 0.5, (0.3, 0.7)),  # above both controls
              "midi-cloak-blackbox": cell(0.0, 0.3, (0.21, 0.5))}  # above the random one, not the level one
    lines = checks({"mimicry": {"musegan": scores}})
    assert any("musegan: the positive control is not seen" in line for line in lines)
    assert any("the FD to the artist sees the wrong notes (FD style PS +0.80 [+0.30, +1.40])" in line for line in lines)
    assert "mimicry / musegan: by the FD's style PS, beats its random control: midi-cloak-whitebox." in lines
    assert "mimicry / musegan: by the FD's style PS, within its random control: midi-cloak-blackbox." in lines
    unseen = dict(scores, **{"positive-wrong-notes": cell(-4.0, 0.3, (-0.2, 0.9))})  # the FD does not see it either
    lines = checks({"mimicry": {"musegan": unseen}})
    assert not any("beats its random control" in line for line in lines)
    assert any("the style measures do not see the wrong notes" in line for line in lines)
    # The table says what the FD compares for the GAN, and only where a MIDI family carries it.
    from harmonycloak.bench.unlearnability.threat_report import markdown_tables

    text = "\n".join(markdown_tables({"mimicry": {"musegan": scores}}))
    assert "For the MIDI families the artist is the composer" in text and "the MIDI families the artist share" not in text
    shared = dict(scores, none=cell(0.0, 0.0, (0.0, 0.0), share=0.25))
    assert "For the MIDI families the artist share is the share of the sounding bars" in "\n".join(
        markdown_tables({"mimicry": {"musegan": shared}}))
    audio = {"none": cell(0.0, 0.0, (0.0, 0.0))}
    text = "\n".join(markdown_tables({"mimicry": {"ar-gru": audio, "musegan": {"none": Score(
        ScoreInterval(0.0, 0.0, 0.0, 3, 8), 0.05, False, {})}}}))
    assert "FD to the artist: the Fréchet distance" in text and "For the MIDI families" not in text


def test_the_future_cue_releases_are_model_free_and_at_their_levels():
    songs = [melody(seconds=1.28, seed=5), melody(seconds=1.28, seed=6)]
    spec = ReleaseSpec(pgd_steps=3, max_rounds=1)
    audible = release("cue-10db", songs, "ar-gru", 0, spec)
    assert audible.summary["surrogates"] == [] and audible.summary["objective"] == "future-cue"
    noise = np.concatenate([r - s for r, s in zip(audible.songs, songs)])
    snr_db = 10 * math.log10(np.sum(np.concatenate(songs).astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2))
    assert snr_db >= 10.0 - 0.5  # the L∞ ball of 10 dB SNR per block holds the noise
    masked = release("masked-cue", songs, "ar-gru", 0, spec)
    assert masked.summary["rounds"]["protected_loss"][0] < 1.0  # some cue written
    assert release_key("masked-cue", "ar-gru") == release_key("cue-10db", "codec-lm") == "any"


def test_the_gain_releases_change_levels_within_their_bound_and_random_gain_is_their_control():
    songs = [melody(seconds=1.28, seed=5), melody(seconds=1.28, seed=6)]
    spec = ReleaseSpec(pgd_steps=3, max_rounds=1)
    bound = 10 ** (max_gain_db("gain", "medium") / 20)  # the gain cloak alone at medium strength
    for method in ("gain-cue", "random-gain"):
        released = release(method, songs, "ar-gru", 0, spec).songs
        for song, out in zip(songs, released):
            # every bin's gain lies within the bound, so the energy does too
            ratio = np.sum(out.astype(np.float64) ** 2) / np.sum(song.astype(np.float64) ** 2)
            assert 1 / bound ** 2 - 1e-3 <= ratio <= bound ** 2 + 1e-3 and not np.array_equal(out, song)
    assert with_controls(("gain-cue",)) == ("none", "random-gain", "gain-cue")
    assert release_key("gain-maxloss-whitebox", "codec-lm") == "codec-lm" and release_key("gain-cue", "ar-gru") == "any"


def test_the_error_maximising_release_raises_the_known_model_s_loss():
    from harmonycloak.bench.unlearnability.threats import song_losses

    songs = [melody(seconds=1.28, seed=7), melody(seconds=1.28, seed=8)]
    spec = ReleaseSpec(pgd_steps=4, max_rounds=1)
    released = release("masked-maxloss-whitebox", songs, "ar-gru", 0, spec)
    assert released.summary["surrogates"] == ["ar-gru"] and released.summary["objective"] == "maxloss"
    base = load_zoo_model("ar-gru")  # the loop fine-tuned its own copy; the zoo's weights are untouched
    assert np.mean(song_losses(base, released.songs, 1.28)) > np.mean(song_losses(base, songs, 1.28))
    assert release_key("masked-maxloss-zoo", "ar-tcn") == "next-frame"


def test_zoo_objectives_read_only_zoo_models_of_other_groups_than_the_attacker_s():
    from harmonycloak.bench.unlearnability.releases import heldout_zoo

    for family in ("ar-transformer", "codec-lm", "mel-diffusion"):
        models = heldout_zoo(family)
        assert models and all(FAMILY_GROUP[m.family] != FAMILY_GROUP[family] for m in models)
    # what every committed held-out row read, whatever the product's reverse gradient reads now
    assert [m.family for m in heldout_zoo("codec-lm")] == ["ar-transformer", "ar-gru", "ar-tcn"]
    assert [m.family for m in heldout_zoo("ar-gru")] == ["codec-lm", "mel-diffusion"]
    assert release_key("masked-gradient-matching", "ar-gru") == release_key("masked-minmin-zoo", "ar-tcn") == "next-frame"
    assert release_key("masked-reverse-gradient", "codec-lm") == FAMILY_GROUP["codec-lm"]
    assert release_key("masked-reverse-gradient-whitebox", "ar-gru") == "ar-gru"


def test_the_reverse_gradient_release_makes_the_known_model_s_step_learn_less_of_the_clean_songs():
    from harmonycloak.optim.gradient_matching import ReverseGradient

    songs = [melody(seconds=1.28, seed=7), melody(seconds=1.28, seed=8)]
    released = release("masked-reverse-gradient-whitebox", songs, "ar-gru", 0, ReleaseSpec(pgd_steps=4, max_rounds=1))
    assert released.summary["surrogates"] == ["ar-gru"] and released.summary["objective"] == "reverse-gradient"
    model, objective = load_zoo_model("ar-gru"), ReverseGradient()
    clean, protected = torch.from_numpy(np.stack(songs)), torch.from_numpy(np.stack(released.songs))
    reference = objective.reference([model], clean, torch.arange(2))
    # ⟨g(x + δ), g(x)⟩ / ‖g(x)‖²: 1 for the clean songs (a central difference, exact to O(h²));
    # the noise turns the step away from them
    assert objective.loss([model], clean, reference)[0].item() == pytest.approx(1.0, abs=2e-3)
    assert objective.loss([model], protected, reference)[0].item() < 0.9


def test_the_trajectory_release_reads_the_known_model_and_its_fine_tuned_stages(monkeypatch):
    from harmonycloak.bench.unlearnability import releases

    monkeypatch.setattr(releases, "TRAJECTORY_STAGES_STEPS", (1, 2))
    songs = [melody(seconds=2.56, seed=7), melody(seconds=2.56, seed=8)]  # a crop of the fine-tune is 2.56 s
    released = release("masked-reverse-gradient-trajectory-whitebox", songs, "ar-gru", 0,
                       ReleaseSpec(pgd_steps=2, max_rounds=1))
    assert released.summary["surrogates"] == ["ar-gru"] * 3  # the base model and its two stages
    assert sorted(released.summary["rounds"]["sampled_models"][0]) == [0, 1, 2]  # all read at every step
    assert release_key("masked-reverse-gradient-trajectory-whitebox", "ar-gru") == "ar-gru"
    assert release_key("masked-reverse-gradient-trajectory", "ar-gru") == "next-frame"


def test_unknown_methods_and_families_are_refused_before_anything_runs(tmp_path):
    from harmonycloak.bench.unlearnability.benchmark import run_unlearnability
    from harmonycloak.errors import SettingsError

    with pytest.raises(SettingsError, match="louder"):
        run_unlearnability("smoke", tmp_path, methods=("louder",))
    with pytest.raises(SettingsError, match="ar-lstm"):
        run_unlearnability("smoke", tmp_path, families=("ar-lstm",))
    with pytest.raises(SettingsError, match="unknown purification attack 'mp3-64k'; known: mp3-128k"):
        run_unlearnability("smoke", tmp_path, methods=("masked-cue+mp3-64k",))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["smoke", "standard", "full"])
def test_every_suite_measures_what_protect_ships_after_its_random_control_and_after_each_attack(name):
    from harmonycloak.bench.unlearnability.suites import get_suite

    suite = get_suite(name)
    for threat in ("scratch", "mimicry"):
        methods = suite.methods_for(threat)
        assert methods.index("random-default") < methods.index("default")  # its bar is trained first
        attacks = suite.scratch_attacks if threat == "scratch" else suite.attacks
        assert attacks and all(f"{method}+{attack}" in methods for attack in attacks
                                for method in ("none", "random-default", "default"))
        assert suite.methods_of(threat, "mel-diffusion") == methods


def test_the_style_control_runs_in_t2_alone_and_the_command_line_s_methods_replace_it():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.suites import get_suite

    standard = get_suite("standard")
    scratch, mimicry = standard.methods_for("scratch"), standard.methods_for("mimicry")
    assert "positive-other-music" in mimicry and "positive-other-music" not in scratch
    assert set(mimicry) - set(scratch) == {"positive-other-music"}  # the attacks alike in both threats here
    assert "positive-white-0db" not in scratch + mimicry and "positive-white-10db" in scratch
    named = adjusted_suite(standard, methods=("masked-cue",))
    assert named.methods_for("mimicry") == named.methods_for("scratch")
    assert named.methods_for("mimicry")[:3] == ("none", "random-masked", "masked-cue")


def test_the_command_line_replaces_the_suite_s_methods_families_and_strength():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite
    from harmonycloak.bench.unlearnability.suites import get_suite

    standard = get_suite("standard")
    suite = adjusted_suite(standard, jobs=1, methods=("masked-cue+mp3-128k",), families=("ar-transformer",),
                           strength="low")
    assert suite.jobs == 1 and suite.families_for_threats == ("ar-transformer",)
    assert suite.threat_methods == ("none", "random-masked", "masked-cue", "masked-cue+mp3-128k")
    assert suite.threat_cloak.strength == "low" and standard.threat_cloak.strength == "medium"
    assert suite.threat_cloak.pgd_steps == standard.threat_cloak.pgd_steps  # the rest of the release effort is kept
    larger = adjusted_suite(standard, scratch_preset="zoo", scratch_steps=1500)
    assert larger.threats.scratch_preset == "zoo" and larger.threats.scratch.steps == 1500
    assert larger.threats.scratch.learning_rate == standard.threats.scratch.learning_rate
    assert larger.threats.mimicry == standard.threats.mimicry and standard.threats.scratch_preset == "small"
    faster = adjusted_suite(standard, scratch_learning_rate=3e-3)
    assert faster.threats.recipe("scratch", "ar-transformer") == replace(standard.threats.scratch, learning_rate=3e-3)
    assert faster.threats.recipe("scratch", "mel-diffusion").learning_rate == 3e-3 and not faster.threats.scratch_sizes
    assert standard.threats.recipe("scratch", "mel-diffusion").learning_rate == 1e-3
    surviving = adjusted_suite(standard, eot=("mp3-128k",))
    assert surviving.threat_cloak.eot == ("mp3-128k",) and standard.threat_cloak.eot == ()
    harder = adjusted_suite(standard, release_steps=20)
    assert harder.threat_cloak.pgd_steps == 20 and standard.threat_cloak.pgd_steps == 6
    assert harder.threat_cloak.max_rounds == standard.threat_cloak.max_rounds
    from harmonycloak.bench.unlearnability.releases import _settings

    assert _settings("masked", 0, surviving.threat_cloak).eot == ("mp3-128k",)  # what the releases are made with
    plain = adjusted_suite(standard, methods=("positive-white-0db",), attacks=())
    assert plain.methods_for("scratch") == ("none", "positive-white-0db") == plain.methods_for("mimicry")
    assert standard.methods_for("scratch")[-1] == "default+mp3-128k"  # the suite's own attacks stay
    aac = adjusted_suite(standard, attacks=("aac-128k",))
    assert "none+aac-128k" in aac.methods_for("mimicry") and "none+mp3-128k" not in aac.methods_for("scratch")
    longer = adjusted_suite(standard, mimicry={"steps": 400}, probe_steps=(200, 25, 100, 25))
    assert longer.threats.mimicry.steps == 400 and longer.threats.probe_steps == (25, 100, 200)
    assert longer.threats.mimicry.learning_rate == standard.threats.mimicry.learning_rate
    assert standard.threats.mimicry.steps == 100 and standard.threats.probe_steps == ()
    adapters = adjusted_suite(standard, mimicry={"kind": "lora", "learning_rate": 1e-3})
    assert (adapters.threats.mimicry.kind, adapters.threats.mimicry.learning_rate) == ("lora", 1e-3)
    assert adapters.threats.mimicry.steps == 100 and adapters.threats.scratch == standard.threats.scratch


def test_a_suite_without_enough_other_music_for_its_control_is_refused_before_any_training():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite, load_threat_data
    from harmonycloak.bench.unlearnability.suites import get_suite

    smoke = get_suite("smoke", parts=("mimicry",))  # 12 songs around the album: 11 for T1's corpus, 1 left
    data = load_threat_data(smoke)
    assert len(data.corpus) == 11 and len(data.heldout) == 1 < len(data.album.released)
    with pytest.raises(SettingsError, match="holds 12 songs; the suite needs 13"):
        load_threat_data(adjusted_suite(smoke, methods=("positive-other-music",)))


def test_the_mimicry_runs_measure_how_close_the_generated_music_comes_to_the_artist():
    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite, load_threat_data
    from harmonycloak.bench.unlearnability.suites import get_suite
    from harmonycloak.bench.unlearnability.threat_experiment import run_threat_seed

    suite = adjusted_suite(get_suite("smoke", parts=("mimicry",)), methods=("positive-white-10db",),
                           families=("ar-transformer",))
    result = run_threat_seed(suite, load_threat_data(suite), 0, log=lambda *_: None)
    fds = {run.condition: run.measures.get("fd_artist") for run in result.runs}
    assert {"base", "none", "positive-white-10db"} <= set(fds)
    assert all(fd is not None and np.isfinite(fd) and fd > 0 for fd in fds.values())
    shares = [run.measures["artist_share"] for run in result.runs]
    assert all(0.0 <= share <= 1.0 for share in shares)
    assert result.artist_classifier["classes"][0] == "planetblupi" and result.artist_classifier["held_out_windows"] > 0


def test_a_contrastive_encoder_is_measured_on_training_s_views_the_same_for_every_model():
    from harmonycloak.bench.unlearnability.threats import song_losses
    from harmonycloak.models.contrastive import symmetric_info_nce_per_item
    from harmonycloak.models.registry import build_model

    generator = torch.Generator().manual_seed(5)
    # 0.75 s and 1.5 s: 2 and 3 segments of 0.5 s
    songs = [0.1 * torch.randn(12_000, generator=generator).numpy() for _ in range(2)]
    songs[1] = np.concatenate([songs[1], songs[1]])
    references = 0.1 * torch.randn(3, 8000, generator=generator)
    model = build_model("contrastive", "tiny", seed=0).eval()
    measured = song_losses(model, songs, 0.5, references)
    assert measured == song_losses(model, songs, 0.5, references)  # the same views every time
    # by hand: the first draw of the views, the pairs' symmetric InfoNCE among items and references
    from harmonycloak.bench.unlearnability.threats import CONTRASTIVE_DRAW_SEED, CONTRASTIVE_DRAWS
    from harmonycloak.cloak.model_input import audio_segments

    items = torch.cat([audio_segments(song, 8000) for song in songs])
    batch = torch.cat([items, references])
    draw = torch.Generator().manual_seed(CONTRASTIVE_DRAW_SEED)
    total = torch.zeros(len(items))
    with torch.no_grad():
        for _ in range(CONTRASTIVE_DRAWS):
            first, second = model.training_views(batch, draw)
            total += symmetric_info_nce_per_item(model.embed_frames(first), model.embed_frames(second),
                                                 model.config.temperature)[: len(items)] / CONTRASTIVE_DRAWS
    assert len(items) == 5
    assert measured == pytest.approx([float(total[:2].mean()), float(total[2:].mean())], rel=1e-5)


def test_a_combined_report_names_the_t1_size_its_runs_trained_and_refuses_two_sizes(tmp_path):
    import json

    from harmonycloak.bench.unlearnability.benchmark import adjusted_suite, combine_reports
    from harmonycloak.bench.unlearnability.report import _settings
    from harmonycloak.bench.unlearnability.suites import get_suite

    standard = get_suite("standard")
    zoo = adjusted_suite(standard, scratch_preset="zoo", scratch_steps=3000)

    def document(name, suite, conditions, threat="scratch", family="ar-transformer"):
        runs = [_run(threat, family, condition, 0, [loss]) for condition, loss in conditions]
        result = ThreatSeedResult(0, ["a"], [], 0.15, {}, runs)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"command": name, "suite": "standard", "wall_s": 60.0,
                                    "suite_settings": _settings(suite), "environment": {}, "data": {},
                                    "protection_scores": [], "seed_results": [],
                                    "threat_seed_results": [result.to_json()]}))
        return path

    first = document("first", zoo, [("unseen", 1.0), ("none", 0.5), ("positive-white-10db", 0.6)])
    second = document("second", zoo, [("unseen", 1.0), ("none", 0.5), ("positive-white-0db", 0.9)])
    combine_reports("standard", [first, second], tmp_path / "out", log=lambda *_: None)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "trained from random weights, the registry's `zoo` size, 3000 steps at 0.001 (frozen" in summary
    assert "| ar-transformer | 100 % | positive-white-0db | 0.80" in summary  # (0.9 − 0.5) / (1.0 − 0.5)
    # the suite's own T1 names the family it sizes otherwise, and a size given on the command line is every family's
    assert standard.threats.scratch_sizes and not zoo.threats.scratch_sizes
    own = standard.threats.scratch_sizes[0]
    small = document("small", standard, [("unseen", 1.0), ("none", 0.5)])
    combine_reports("standard", [small], tmp_path / "small", log=lambda *_: None)
    assert (f"the registry's `small` size, 400 steps at 0.001 ({own.family}: `{own.preset}`, {own.steps} steps at "
            f"{own.learning_rate:g}, log-mel floor {own.log_floor_db:g} dB)") in (tmp_path / "small" / "summary.md"
                                                                                ).read_text()
    with pytest.raises(SettingsError, match="trained T1's attackers of ar-transformer at different sizes"):
        combine_reports("standard", [first, small], tmp_path / "refused", log=lambda *_: None)
    faster = document("faster", adjusted_suite(zoo, scratch_learning_rate=3e-3), [("unseen", 1.0), ("none", 0.5)])
    with pytest.raises(SettingsError, match="trained T1's attackers of ar-transformer at different sizes"):
        combine_reports("standard", [first, faster], tmp_path / "refused-rate", log=lambda *_: None)
    alike = document("alike", replace(standard, threats=replace(standard.threats, scratch_sizes=())),
                     [("unseen", 1.0), ("none", 0.5)])
    with pytest.raises(SettingsError, match="trained T1's attackers of ar-transformer at different sizes"):
        combine_reports("standard", [small, alike], tmp_path / "refused-sizes", log=lambda *_: None)
    shallow = document("shallow", replace(standard, threats=replace(standard.threats, scratch_sizes=(
        replace(own, log_floor_db=None),))), [("unseen", 1.0), ("none", 0.5)])
    with pytest.raises(SettingsError, match="trained T1's attackers of ar-transformer at different sizes"):
        combine_reports("standard", [small, shallow], tmp_path / "refused-floor", log=lambda *_: None)
    upper = document("upper", replace(standard, threats=replace(standard.threats, scratch_sizes=(
        replace(own, probe_timestep_from=0.5),))), [("unseen", 1.0), ("none", 0.5)])
    with pytest.raises(SettingsError, match="trained T1's attackers of ar-transformer at different sizes"):
        combine_reports("standard", [small, upper], tmp_path / "refused-timesteps", log=lambda *_: None)
    # T1 is read family by family: a codec LM run under a suite that sized no family joins the transformer's
    # run at its own size, and the report names both sizes; two sizes of the codec LM are refused
    unsized = replace(standard, threats=replace(standard.threats, scratch_sizes=()))
    codec = document("codec", unsized, [("unseen", 1.0), ("none", 0.5)], family="codec-lm")
    combine_reports("standard", [small, codec], tmp_path / "joined", log=lambda *_: None)
    joined = (tmp_path / "joined" / "summary.md").read_text()
    assert "the registry's `small` size, 400 steps at 0.001 (ar-transformer: `zoo`, 400 steps at 0.003, " in joined
    assert "| codec-lm | 100 % | none |" in joined and "| ar-transformer | 100 % | none |" in joined
    longer = document("longer", zoo, [("unseen", 1.0), ("none", 0.5)], family="codec-lm")
    with pytest.raises(SettingsError, match="attackers of codec-lm at different sizes .*`small`, 400 steps at 0.001; "
                                            "`zoo`, 3000 steps at 0.001\\)"):
        combine_reports("standard", [codec, longer], tmp_path / "refused-codec", log=lambda *_: None)
    # T2 the same way: the recipe its runs fine-tuned with, and no two recipes in one report
    adapters = adjusted_suite(standard, mimicry={"kind": "lora", "learning_rate": 1e-3, "steps": 200})
    lora = document("lora", adapters, [("base", 1.0), ("none", 0.5)], "mimicry")
    combine_reports("standard", [lora], tmp_path / "lora", log=lambda *_: None)
    assert "fine-tuned on the released clips (LoRA of rank 8, 200 Adam steps at 0.001)" in (
        tmp_path / "lora" / "summary.md").read_text()
    full = document("full", standard, [("base", 1.0), ("none", 0.5)], "mimicry")
    with pytest.raises(SettingsError, match="trained T2's attackers at different sizes"):
        combine_reports("standard", [lora, full], tmp_path / "refused-t2", log=lambda *_: None)


@pytest.mark.parametrize("family", ["ar-transformer", "mel-diffusion", "codec-lm"])
def test_an_attacker_measured_on_the_way_reads_as_a_shorter_training_would(family):
    songs = [melody(seed=s) for s in range(3)]
    probes = {"released": songs[:2]}
    eight = replace(TINY, steps=8)
    # step 9 is past the training's last (8), and step 8 is the last itself: song_losses holds it
    measured = ThreatSpec(scratch_preset="tiny", scratch=eight, probe_steps=(1, 2, 8, 9))
    run = train_attacker("scratch", family, "none", songs, probes, measured, 4)
    assert sorted(run.losses_at_step) == ["1", "2"]
    for steps in (1, 2):
        shorter = train_attacker("scratch", family, "none", songs, probes,
                                 ThreatSpec(scratch_preset="tiny", scratch=replace(TINY, steps=steps)), 4)
        assert run.losses_at_step[str(steps)] == shorter.song_losses
    plain = train_attacker("scratch", family, "none", songs, probes,
                           ThreatSpec(scratch_preset="tiny", scratch=eight), 4)
    # measuring changed nothing, to the last bit (a frozen part in eval mode from the start: the
    # diffusion model's conditioner toggled into eval by the first measurement rounded its later steps apart)
    assert run.song_losses == plain.song_losses and run.curve == plain.curve
    assert plain.losses_at_step == {}
    assert run.losses_at_step["1"] != run.losses_at_step["2"] != run.song_losses  # the model moved in between
    with pytest.raises(SettingsError, match="steps to measure at"):
        ThreatSpec(probe_steps=(0,))


def test_scores_along_the_training_take_every_condition_after_the_same_step():
    from harmonycloak.bench.unlearnability.threat_report import along_training_markdown, relative_gap, score_cell
    from harmonycloak.bench.unlearnability.threat_experiment import merge_seed_results

    def run(threat, condition, seed, at_10, at_20, last):
        made = _run(threat, "ar-gru", condition, seed, [last])
        if condition != "base":
            made.losses_at_step = {"10": {"released": [at_10]}, "20": {"released": [at_20]}}
        return made

    results = []
    for seed in (0, 1):
        runs = [run("mimicry", "base", seed, 9.0, 9.0, 1.0),  # the base model does not train: 1.0 at every step
                run("mimicry", "none", seed, 0.8, 0.6, 0.5),
                run("mimicry", "default", seed, 0.9, 0.7, 0.55),
                run("scratch", "unseen", seed, 2.0, 1.5, 1.2),
                run("scratch", "none", seed, 1.0, 1.0, 1.0),
                run("scratch", "default", seed, 1.5, 1.1, 1.0)]
        results.append(ThreatSeedResult(seed, ["a"], [], 0.15, {}, runs))
    # T2 after 10 steps: (0.9 − 0.8) / (1.0 − 0.8) = 0.5; after 20: 0.1 / 0.4 = 0.25; last: 0.05 / 0.5 = 0.1
    for step, expected in ((10, 0.5), (20, 0.25), (None, 0.1)):
        assert score_cell(results, "mimicry", "ar-gru", "default", step=step, n_resamples=20).ps == pytest.approx(expected)
    # T1 after 10 steps: (1.5 − 1.0) / (2.0 − 1.0) = 0.5; after 20: 0.1 / 0.5 = 0.2; last: 0
    assert score_cell(results, "scratch", "ar-gru", "default", step=20, n_resamples=20).ps == pytest.approx(0.2)
    assert relative_gap(results, "mimicry", "ar-gru", step=10) == pytest.approx(0.25)  # (1.0 − 0.8) / 0.8
    assert score_cell(results, "mimicry", "ar-gru", "default", step=30) is None  # not measured there
    text = "\n".join(along_training_markdown(results, ("scratch", "mimicry"), ("ar-gru",),
                                             lambda threat, family: ("none", "default"),
                                             {"scratch": 400, "mimicry": 100}, n_resamples=20))
    assert "| family | method | step 10 | step 20 | step 100 (last) |" in text
    assert "| ar-gru | default | 0.50 [0.50, 0.50] | 0.25 [0.25, 0.25] | 0.10 [0.10, 0.10] |" in text
    assert "| ar-gru | gap | 25 % | 67 % | 100 % |" in text  # T2: 0.2 / 0.8, 0.4 / 0.6, 0.5 / 0.5
    assert "| ar-gru | default | 0.50 [0.50, 0.50] | 0.20 [0.20, 0.20] | 0.00 [0.00, 0.00] |" in text  # T1
    # families trained to different last steps: the column says so instead of one number
    assert "| family | method | step 10 | step 20 | last step |" in "\n".join(along_training_markdown(
        results, ("scratch",), ("ar-gru",), lambda threat, family: ("none", "default"), {"scratch": None},
        n_resamples=20))
    plain = [ThreatSeedResult(0, ["a"], [], 0.15, {}, [_run("mimicry", "ar-gru", "none", 0, [0.5])])]
    assert along_training_markdown(plain, ("mimicry",), ("ar-gru",), lambda threat, family: ("none",), {}) == []
    # two runs of one cell keep what each measured on the way, and a round trip through JSON keeps it all
    import json

    early = ThreatSeedResult(0, ["a"], [], 0.15, {}, [run("mimicry", "none", 0, 0.8, 0.6, 0.5)])
    late = ThreatSeedResult(0, ["a"], [], 0.15, {}, [run("mimicry", "none", 0, 0.8, 0.6, 0.5)])
    late.runs[0].losses_at_step = {"50": {"released": [0.55]}}
    (merged,) = merge_seed_results([early, late])
    assert sorted(merged.runs[0].losses_at_step) == ["10", "20", "50"]
    assert ThreatSeedResult.from_json(json.loads(json.dumps(merged.to_json()))) == merged


# --- a codec LM's attacker ---------------------------------------------------------------------


def test_a_codec_lm_attacker_crops_the_songs_tokens_on_the_codec_frame_grid_without_augmentation():
    codec_lm, spec = load_zoo_model("codec-lm"), ThreatSpec()
    hop = 2 * 4 * 5 * 8  # the zoo codec's strides: one frame is 320 samples, 20 ms at 16 kHz
    for threat in ("scratch", "mimicry"):
        asked = spec.recipe(threat)
        recipe = attacker_recipe(asked, codec_lm)
        assert recipe.crop_grid_samples == hop and not recipe.augment_gain and not recipe.augment_speed
        assert recipe.tokenise_songs and not asked.tokenise_songs
        assert (recipe.kind, recipe.steps, recipe.learning_rate) == (asked.kind, asked.steps, asked.learning_rate)
    assert attacker_recipe(spec.mimicry, load_zoo_model("ar-gru")) == spec.mimicry  # the waveform's own models


def test_a_crop_on_the_codec_grid_keeps_the_songs_tokens_and_one_sample_off_it_loses_them(example_song):
    from harmonycloak.cloak.model_input import working_rate_mono
    from harmonycloak.io.audio import read_audio

    audio = read_audio(example_song)
    start = audio.num_frames // 2
    song = torch.from_numpy(working_rate_mono(audio.samples[:, start:start + 5 * audio.sample_rate_hz],
                                              audio.sample_rate_hz))[None]
    codec = load_zoo_model("codec-lm").codec.eval()
    hop, frames = codec.hop, 128  # a crop of 2.56 s
    with torch.no_grad():
        whole = codec.tokens(song)[0]  # (T', K)
        on_grid = codec.tokens(song[:, 10 * hop:(10 + frames) * hop])[0]
        off_grid = codec.tokens(song[:, 10 * hop + 1:(10 + frames) * hop + 1])[0]
    inside = slice(4, frames - 4)  # the convolutions see past a crop's edges only near them
    expected = whole[10:10 + frames][inside]
    assert torch.equal(on_grid[inside], expected)
    assert (off_grid[inside, 0] == expected[:, 0]).float().mean() < 0.5  # even the coarsest codebook moves


def test_the_codec_lm_attacker_trains_with_the_codec_lm_recipe(monkeypatch):
    import harmonycloak.bench.unlearnability.threats as threats

    used = []
    monkeypatch.setattr(threats, "finetune", lambda model, songs, recipe, seed, after_step=None: used.append(recipe) or [])
    song = np.zeros(WORKING_RATE_HZ, np.float32)
    for family in ("codec-lm", "ar-gru"):
        threats.trained_attacker("mimicry", family, [song], ThreatSpec(), 0)
    assert [(recipe.crop_grid_samples, recipe.tokenise_songs) for recipe in used] == [(320, True), (1, False)]
