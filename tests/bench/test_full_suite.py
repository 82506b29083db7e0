"""The full suite's own configuration, run end to end with its numbers cut to seconds.

The full suite is sized for a GPU (hours there, days on this CPU), so its real run is not a
test. What is tested is everything about it except its size: default-size models of every
family, every method (the masked cloak included), ViSQOL, the style experiment on every audio
family, the MIDI families at their default size and resolution, all threads.
"""

from dataclasses import replace

import pytest

from harmonycloak.bench.unlearnability.benchmark import run_unlearnability
from harmonycloak.bench.unlearnability.suites import ALL_METHODS, AUDIO_FAMILIES, get_suite


def full_suite_in_seconds():
    full = get_suite("full")
    return replace(
        full,
        data=replace(full.data, pieces_per_composer=(("bach", 2), ("essen", 1)), recordings=1, song_s=2.56),
        training=replace(full.training, steps=1, batch_segments=2, evaluate_every=1),
        cloak=replace(full.cloak, pgd_steps=1, max_rounds=1, bag_size=2, models_per_round=2),
        seeds=(0,),
        window_ablation_ms=(20.0,),
        fraction_ablation=(1.0,),
        measures=replace(full.measures, clips=2, generated_s=1.5, griffin_lim_iterations=2,
                         classifier_files_per_style=2),
        album=replace(full.album, released_tracks=2, unreleased_tracks=1, clips_per_track=1),
        threat_corpus=replace(full.threat_corpus, pieces_per_composer=(("palestrina", 10),), recordings=4),
        threats=replace(full.threats, scratch_released=2, scratch=replace(full.threats.scratch, steps=1, batch_segments=2),
                        scratch_sizes=tuple(replace(size, steps=1) for size in full.threats.scratch_sizes),
                        mimicry=replace(full.threats.mimicry, steps=1, batch_segments=2)),
        threat_cloak=replace(full.threat_cloak, pgd_steps=1, max_rounds=1, bag_size=2, models_per_round=2),
        attacks=("mp3-128k", "denoise-spectral"), scratch_attacks=("resample-22k",),
        # two of the four families (a frozen-part reader and a plain one), two attacked methods: minutes, not hours
        families_for_threats=("codec-lm", "contrastive"), attacked_methods=("none", "dominant-blackbox"),
        midi=replace(full.midi, pieces_per_composer=(("bach", 2),), steps=1, batch_segments=2, evaluate_every=1,
                     max_bars=4, pgd_steps=1, max_rounds=1, bag_size=2, models_per_round=2, generated_phrases=2),
    )


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    document = run_unlearnability("full", out, command="harmonycloak bench unlearnability --suite full (cut)",
                                  suite=full_suite_in_seconds(), log=lambda *_: None)
    return out, document


def test_full_suite_runs_every_family_method_and_measure(full_report):
    out, document = full_report
    assert document["suite_settings"]["training"]["preset"] == "default"
    rows = [r for r in document["protection_scores"] if r["tag"] == "main"]
    assert {r["family"] for r in rows} == set(AUDIO_FAMILIES) | {"musegan", "symphonynet"}
    audio_methods = {r["method"] for r in rows if r["family"] in AUDIO_FAMILIES}
    assert audio_methods == set(ALL_METHODS) and "masked-blackbox+mp3" in audio_methods
    main = next(r for r in document["seed_results"] if r["tag"] == "main" and r.get("kind") != "midi")
    assert 1.0 <= main["methods"]["cloak-blackbox"]["audibility"]["ar-transformer"]["visqol_mos"] <= 5.0
    style = [r for r in document["seed_results"] if r["tag"] == "style=bach"]
    assert {run["family"] for run in style[0]["runs"]} == set(AUDIO_FAMILIES)
    summary = (out / "summary.md").read_text()
    for section in ("## Headline", "## Generated music (Tables 3–5)", "## Style unlearnability",
                    "## Generated music of the MIDI families", "Window length (Table 6)", "Protected fraction (Table 7)"):
        assert section in summary
    assert "## Protection against attackers of four families, two threat models" in summary


def test_full_suite_scores_every_threat_family_method_and_attack(full_report):
    from harmonycloak.bench.unlearnability.headline import read_headline
    out, document = full_report
    headline = read_headline(out / "headline.json")  # validated on reading
    suite = full_suite_in_seconds()
    for threat in ("scratch", "mimicry"):
        assert set(headline["threat_models"][threat]) == set(suite.families_for_threats)
        for family, methods in headline["threat_models"][threat].items():
            expected = set(suite.threat_methods) | {f"{m}+{a}" for a in (suite.scratch_attacks if threat == "scratch" else suite.attacks)
                                       for m in suite.attacked_methods}
            assert set(methods) == expected, (threat, family)
            assert methods["none"]["ps"] == 0.0
    assert len(document["threat_seed_results"]) == 1
    # the contrastive encoder's T1 trains at its own, slower rate (its training is chaotic at the others')
    sizes = {size["family"]: size for size in document["suite_settings"]["threats"]["scratch_sizes"]}
    assert (sizes["contrastive"]["preset"], sizes["contrastive"]["learning_rate"]) == ("zoo", 5e-5)
    assert document["suite_settings"]["threats"]["scratch"]["learning_rate"] == 1e-3
