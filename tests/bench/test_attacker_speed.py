"""`harmonycloak bench attackers`: the trainings a suite runs are counted as its conditions say,
and the projected time is that count times the recipe's steps times the measured step."""

import json
from dataclasses import replace

import pytest

from harmonycloak.bench.attacker_speed import run_attacker_speed, suite_trainings
from harmonycloak.bench.unlearnability.suites import get_suite
from harmonycloak.errors import SettingsError


def test_trainings_are_every_condition_but_the_base_model_for_every_seed():
    suite = replace(get_suite("smoke"), seeds=(0, 1), threat_methods=("positive-white-10db", "masked-cue"),
                    attacks=("mp3-128k",), scratch_attacks=(), attacked_methods=("masked-cue",))
    # T1: unseen, none, positive-white-10db, masked-cue → 4 per seed
    assert suite_trainings(suite, "scratch") == 2 * 4
    # T2: (base is measured, not trained) none, positive-white-10db, masked-cue, none+mp3-128k, masked-cue+mp3-128k
    assert suite_trainings(suite, "mimicry") == 2 * 5


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
            row["seconds_per_step"] * recipe.steps * suite_trainings(suite, row["threat"]))
    assert figures["suite_training_s"] == pytest.approx(sum(row["suite_training_s"] for row in figures["rows"]))
    assert json.loads((tmp_path / "speed.json").read_text())["rows"] == figures["rows"]
    assert len(lines) == 3 and lines[-1].startswith("suite smoke: the threat models' trainings take")


def test_unknown_families_and_no_steps_are_refused():
    with pytest.raises(SettingsError, match="symphonynet"):
        run_attacker_speed("smoke", "cpu", 1, ("symphonynet",))
    with pytest.raises(SettingsError, match="steps"):
        run_attacker_speed("smoke", "cpu", 0)
