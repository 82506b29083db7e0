"""`harmonycloak bench attackers`: the trainings a suite runs are counted as its conditions say,
and the projected time is that count times the recipe's steps times the measured step."""

import json
from dataclasses import replace

import pytest

from harmonycloak.bench.attacker_speed import run_attacker_speed, suite_trainings
from harmonycloak.bench.unlearnability.suites import get_suite
from harmonycloak.bench.unlearnability.threats import ScratchSize, scratch_sizes_text
from harmonycloak.errors import SettingsError


def test_trainings_are_every_condition_but_the_base_model_for_every_seed():
    suite = replace(get_suite("smoke"), seeds=(0, 1), threat_methods=("positive-white-10db", "masked-cue"),
                    attacks=("mp3-128k",), scratch_attacks=(), attacked_methods=("masked-cue",))
    # T1: unseen, none, positive-white-10db, masked-cue → 4 per seed
    assert suite_trainings(suite, "scratch", "ar-transformer") == 2 * 4
    # T2: (base is measured, not trained) none, positive-white-10db, masked-cue, none+mp3-128k, masked-cue+mp3-128k
    assert suite_trainings(suite, "mimicry", "ar-transformer") == 2 * 5


def test_a_family_whose_t1_size_skips_the_attacks_trains_no_attacked_release_in_t1_alone():
    smoke = get_suite("smoke")
    unattacked = ScratchSize("contrastive", "tiny", steps=2, learning_rate=1e-3, attacked=False)
    suite = replace(smoke, seeds=(0,), threat_methods=("positive-white-10db",), attacks=("mp3-128k",),
                    scratch_attacks=("mp3-128k",), attacked_methods=("none",),
                    threats=replace(smoke.threats, scratch_sizes=(unattacked,)))
    # T1: unseen, none, positive-white-10db, then none+mp3-128k and unseen+mp3-128k for every other family
    assert suite_trainings(suite, "scratch", "ar-transformer") == 5
    assert suite_trainings(suite, "scratch", "contrastive") == 3
    assert suite.methods_of("scratch", "contrastive") == ("positive-white-10db",)
    # T2 is not T1: the same family is measured after MP3 there (none, positive-white-10db, none+mp3-128k)
    assert suite_trainings(suite, "mimicry", "contrastive") == 3
    assert "contrastive: `tiny`, 2 steps at 0.001, no attacked releases" in scratch_sizes_text(suite.threats)
    standard = get_suite("standard")
    assert all("+" not in method for method in standard.methods_of("scratch", "contrastive"))
    assert any("+" in method for method in standard.methods_of("scratch", "ar-transformer"))


def test_a_timed_family_projects_its_suite_from_its_measured_step(tmp_path):
    lines = []
    figures = run_attacker_speed("smoke", "cpu", 1, ("ar-transformer",), tmp_path / "speed.json", log=lines.append)
    suite = get_suite("smoke")
    assert [(row["family"], row["threat"]) for row in figures["rows"]] == [
        ("ar-transformer", "scratch"), ("ar-transformer", "mimicry")]
    for row in figures["rows"]:
        recipe = suite.threats.recipe(row["threat"])
        assert row["seconds_per_step"] > 0 and row["steps"] == recipe.steps
        assert row["suite_training_s"] == pytest.approx(
            row["seconds_per_step"] * recipe.steps * suite_trainings(suite, row["threat"], row["family"]))
    assert figures["suite_training_s"] == pytest.approx(sum(row["suite_training_s"] for row in figures["rows"]))
    assert json.loads((tmp_path / "speed.json").read_text())["rows"] == figures["rows"]
    assert len(lines) == 3 and lines[-1].startswith("suite smoke: the threat models' trainings take")


def test_unknown_families_and_no_steps_are_refused():
    with pytest.raises(SettingsError, match="symphonynet"):
        run_attacker_speed("smoke", "cpu", 1, ("symphonynet",))
    with pytest.raises(SettingsError, match="steps"):
        run_attacker_speed("smoke", "cpu", 0)
