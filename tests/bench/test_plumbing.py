"""The benchmark end to end on a tiny case: songs → releases → attackers → report folder."""

import json
from dataclasses import replace

import pytest

from harmonycloak.bench.unlearnability.baselines import CloakSpec
from harmonycloak.bench.unlearnability.benchmark import run_unlearnability
from harmonycloak.bench.unlearnability.data import DataSpec
from harmonycloak.bench.unlearnability.measures import MeasureSpec
from harmonycloak.bench.unlearnability.midi import MidiSpec
from harmonycloak.bench.unlearnability.runs import TrainingSpec
from harmonycloak.bench.unlearnability.suites import get_suite
from harmonycloak.cli import _parser
from harmonycloak.errors import SettingsError


def tiny_suite():
    return replace(
        get_suite("smoke"),
        name="tiny-test",
        data=DataSpec(pieces_per_composer=(("bach", 2), ("essen", 1)), recordings=1, song_s=2.56),
        training=TrainingSpec(preset="tiny", steps=6, batch_segments=2, evaluate_every=3),
        cloak=CloakSpec(model_preset="tiny", pgd_steps=1, max_rounds=1, bag_size=2, models_per_round=2),
        families=("ar-tcn",),
        methods=("none", "gaussian-0.1+mp3", "cloak-blackbox"),
        protected_fraction=0.5,
        seeds=(0, 1),
        window_ablation_ms=(20.0,),
        fraction_ablation=(1.0,),
        ablation_family="ar-tcn",
        midi=MidiSpec(pieces_per_composer=(("bach", 4),), steps=4, batch_segments=2, evaluate_every=2, max_bars=4,
                      pgd_steps=1, max_rounds=1, bag_size=2, models_per_round=2),
        measures=MeasureSpec(conditions=("clean", "unseen"), clips=2, generated_s=1.5, griffin_lim_iterations=4,
                             classifier_files_per_style=2, style_families=("ar-tcn",)),
    )


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("unlearnability")
    suite = tiny_suite()
    document = run_unlearnability("tiny-test", out, command="harmonycloak bench unlearnability --test", suite=suite,
                                  log=lambda *_: None)
    return out, document


def test_report_folder_has_every_part(tiny_report):
    out, _ = tiny_report
    for name in ("results.json", "summary.md", "curves.png", "ps_vs_snr.png"):
        assert (out / name).stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "harmonycloak bench unlearnability --test" in summary
    assert "| ar-tcn |" in summary


def test_every_number_carries_its_seed_and_the_command(tiny_report):
    out, _ = tiny_report
    document = json.loads((out / "results.json").read_text())
    assert document["command"] == "harmonycloak bench unlearnability --test"
    rows = document["protection_scores"]
    assert {r["seed"] for r in rows} == {0, 1}
    assert {r["method"] for r in rows} == {"none", "gaussian-0.1+mp3", "cloak-blackbox", "cloak-whitebox"}
    assert {r["family"] for r in rows} == {"ar-tcn", "musegan", "symphonynet"}
    for result in document["seed_results"]:
        assert result["seed"] in (0, 1)
        assert {run["seed"] for run in result["runs"]} == {result["seed"]}
        if result["tag"] == "main":
            assert len(result["protected_songs"]) == 2  # half of four songs


def test_ablations_reuse_references_and_handle_a_fully_protected_set(tiny_report):
    out, document = tiny_report
    by_tag = {(r["seed"], r["tag"]): r for r in document["seed_results"] if r.get("kind") != "midi"}
    for seed in (0, 1):
        main, window = by_tag[(seed, "main")], by_tag[(seed, "window=20ms")]
        assert window["window_ms"] == 20.0 and window["protected_songs"] == main["protected_songs"]
        clean = [r for r in main["runs"] if r["condition"] == "clean"]
        assert [r for r in window["runs"] if r["condition"] == "clean"] == clean  # reused, not retrained
        everything = by_tag[(seed, "fraction=1")]
        assert len(everything["protected_songs"]) == 4
        unseen = [r for r in everything["runs"] if r["condition"] == "unseen"][0]
        assert unseen["curve_steps"] == [0]  # nothing left to train on: the untrained model is measured
    summary = (out / "summary.md").read_text()
    assert "Window length (Table 6)" in summary and "Protected fraction (Table 7)" in summary
    assert (out / "ablations.png").stat().st_size > 0


def test_generated_music_is_judged_and_the_style_experiment_protects_the_whole_artist(tiny_report):
    out, document = tiny_report
    for result in document["seed_results"]:
        if result.get("kind") == "midi" or result["tag"].startswith(("window", "fraction")):
            continue
        judged = {run["condition"] for run in result["runs"] if run["measures"]}
        assert judged == {"clean", "unseen"}
        for run in result["runs"]:
            if run["measures"]:
                assert run["measures"]["seed"] == result["seed"] and run["measures"]["clips"] == 2
                assert run["measures"]["fad_vs_clean_songs"] >= 0
                assert sum(v for v in run["measures"]["style_share"].values() if v is not None) in (0, pytest.approx(1.0))
    style = [r for r in document["seed_results"] if r["tag"] == "style=bach"]
    assert len(style) == 2
    assert all(sorted(r["protected_songs"]) == ["bach/bwv1.6.mxl", "bach/bwv10.7.mxl"] for r in style)
    summary = (out / "summary.md").read_text()
    assert "## Generated music (Tables 3–5)" in summary and "## Style unlearnability" in summary


def test_no_noise_scores_exactly_zero(tiny_report):
    # "none" trains on the very data of "clean", from the same weights and batches: equal losses,
    # so PS = 0 exactly whenever the gap is not degenerate.
    _, document = tiny_report
    for row in document["protection_scores"]:
        if row["method"] == "none":
            assert row["loss_cloaked"] == row["loss_clean"]
            assert row["protection_score"] in (0.0, None)


def test_curves_start_from_the_same_weights(tiny_report):
    _, document = tiny_report
    for result in document["seed_results"]:
        for family in {run["family"] for run in result["runs"]}:
            runs = [run for run in result["runs"] if run["family"] == family]
            assert len({run["curves"]["protected_clean"][0] for run in runs}) == 1  # paired: same untrained model
        if result.get("kind") != "midi":
            assert result["runs"][0]["curve_steps"] == [0, 3, 6]


def test_midi_black_box_bag_leaves_the_target_out(tiny_report):
    _, document = tiny_report
    midi = [r for r in document["seed_results"] if r.get("kind") == "midi"]
    assert len(midi) == 2
    for result in midi:
        for family in ("musegan", "symphonynet"):
            assert result["methods"]["cloak-blackbox"]["summary"][family]["target_architecture_in_bag"] is False
            conditions = {run["condition"] for run in result["runs"] if run["family"] == family}
            assert conditions == {"clean", "unseen", "none", "cloak-whitebox", "cloak-blackbox"}


def test_midi_attackers_generated_music_is_judged_beside_the_protected_pieces(tiny_report):
    out, document = tiny_report
    for result in (r for r in document["seed_results"] if r.get("kind") == "midi"):
        for family in ("musegan", "symphonynet"):
            reference = result["reference_measures_by_family"][family]
            assert reference["bars"] > 0 and 0 <= reference["symbolic"]["EB (%)"] <= 100
            judged = {run["condition"]: run["measures"] for run in result["runs"]
                      if run["family"] == family and run["measures"]}
            assert set(judged) == {"clean", "unseen", "cloak-whitebox", "cloak-blackbox"}  # "none" is clean's twin
            for measures in judged.values():
                assert measures["seed"] == result["seed"] and measures["phrases"] == 8
                assert measures["bars"] > 0 and set(measures["symbolic"]) == {"EB (%)", "UPC", "QN (%)", "TD"}
    assert "## Generated music of the MIDI families (Tables 3–4)" in (out / "summary.md").read_text()


def test_cli_parses_the_subcommand():
    arguments = _parser().parse_args(["bench", "unlearnability", "--suite", "standard", "--seeds", "4", "5"])
    assert arguments.suite == "standard" and arguments.seeds == [4, 5]
    assert get_suite("standard", (4, 5)).seeds == (4, 5)
    with pytest.raises(SettingsError):
        get_suite("huge")


def test_reports_of_parts_combine_into_one(tiny_report, tmp_path):
    from harmonycloak.bench.unlearnability.benchmark import combine_reports

    out, document = tiny_report
    combined = combine_reports(document["suite"], [out / "results.json"], tmp_path / "combined", suite=tiny_suite(),
                               log=lambda *_: None)
    def scores(rows):
        return [(r["seed"], r["tag"], r["family"], r["method"], r["loss_cloaked"]) for r in rows]

    assert scores(combined["protection_scores"]) == scores(document["protection_scores"])
    assert (tmp_path / "combined" / "summary.md").read_text().count("| ar-tcn |") >= 1
