"""Report arithmetic on hand-made runs: PS per seed, mean ± std, shortfall statements."""

import math
import shutil
import subprocess
from pathlib import Path

import pytest

from harmonycloak.bench.unlearnability.report import git_state, headline_table, protection_scores, shortfalls
from harmonycloak.bench.unlearnability.results import SeedResult, TrainingResult


def _run(family, condition, loss):
    return TrainingResult(family, condition, 0, {"protected_clean": loss}, {}, [], 0.0)


def _seed(seed, clean, unseen, whitebox, blackbox):
    return SeedResult(seed, "main", "audio", 0.15, 10.0, [],
                      runs=[_run("ar-gru", "clean", clean), _run("ar-gru", "unseen", unseen),
                            _run("ar-gru", "cloak-whitebox", whitebox), _run("ar-gru", "cloak-blackbox", blackbox)])


def test_protection_scores_per_seed():
    rows = protection_scores([_seed(0, 0.10, 0.20, 0.18, 0.11), _seed(1, 0.10, 0.14, 0.12, 0.10)])
    ps = {(r["seed"], r["method"]): r["protection_score"] for r in rows}
    assert ps[(0, "cloak-whitebox")] == pytest.approx(0.8)
    assert ps[(0, "cloak-blackbox")] == pytest.approx(0.1)
    assert ps[(1, "cloak-whitebox")] == pytest.approx(0.5)
    assert ps[(1, "cloak-blackbox")] == pytest.approx(0.0)
    assert [r["relative_gap"] for r in rows if r["seed"] == 0] == [pytest.approx(1.0)] * 2


def test_headline_table_mean_and_std_over_seeds():
    table = headline_table(protection_scores([_seed(0, 0.10, 0.20, 0.18, 0.11), _seed(1, 0.10, 0.14, 0.12, 0.10)]),
                           ("ar-gru",))
    # white-box PS 0.8 and 0.5: mean 0.65, sample std 0.2121
    assert "0.65 ± 0.21 (n=2)" in table
    # black-box PS 0.1 and 0.0: mean 0.05, std 0.0707
    assert "0.05 ± 0.07 (n=2)" in table


def test_headline_shows_the_masked_cloak_and_its_control_when_present():
    seed = _seed(0, 0.10, 0.20, 0.18, 0.11)
    seed.runs += [_run("ar-gru", "masked-blackbox", 0.16), _run("ar-gru", "random-masked", 0.105)]
    table = headline_table(protection_scores([seed]), ("ar-gru",))
    header, _, row = table.splitlines()
    assert header.endswith("| PS masked-blackbox | PS random-masked |")
    # (0.16 − 0.10) / (0.20 − 0.10) = 0.6 and (0.105 − 0.10) / 0.10 = 0.05, after the paper cloak's 0.8 and 0.1
    assert row.endswith("| 0.80 (n=1) | 0.10 (n=1) | 0.60 (n=1) | 0.05 (n=1) |")
    assert "masked" not in headline_table(protection_scores([_seed(0, 0.10, 0.20, 0.18, 0.11)]), ("ar-gru",))


def test_degenerate_gap_is_reported_not_divided():
    rows = protection_scores([_seed(0, 0.10, 0.10, 0.12, 0.10)])
    assert all(math.isnan(r["protection_score"]) for r in rows)
    notes = shortfalls(rows, ("ar-gru",))
    assert len(notes) == 1 and "PS values are noise" in notes[0]


def test_small_gap_gives_one_note_not_conclusions():
    # gap 1 %: PS 0.5 / 0.0 would otherwise read as findings
    notes = shortfalls(protection_scores([_seed(0, 0.100, 0.101, 0.1005, 0.100)]), ("ar-gru",))
    assert len(notes) == 1 and notes[0].startswith("ar-gru: seen songs are learned only 1.0 %")


def test_shortfall_says_when_black_box_fails():
    notes = shortfalls(protection_scores([_seed(0, 0.10, 0.20, 0.19, 0.105)]), ("ar-gru",))
    assert any(n.startswith("cloak-blackbox vs ar-gru: PS = 0.05") for n in notes)
    assert not any(n.startswith("cloak-whitebox vs ar-gru") for n in notes)  # PS 0.9: no shortfall


def test_saturated_loss_gives_one_note():
    notes = shortfalls(protection_scores([_seed(0, 1e-6, 2e-6, 1.5e-6, 1e-6)]), ("ar-gru",))
    assert len(notes) == 1 and "saturated" in notes[0]


def test_a_threat_only_run_does_not_claim_zero_songs():
    from types import SimpleNamespace

    from harmonycloak.bench.unlearnability.report import _data_line

    suite = SimpleNamespace(data=SimpleNamespace(song_s=5.12, sample_rate_hz=16000), protected_fraction=0.15)
    assert "0 songs" not in _data_line(suite, {"songs": 0, "by_artist": {}})
    line = _data_line(suite, {"songs": 26, "by_artist": {"bach": 26}, "midi_pieces": [1, 2]})
    assert "26 songs of 5.12 s at 16000 Hz mono (bach: 26); 2 MIDI pieces" in line and "protected fraction 15%" in line


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_environment_says_whether_the_code_that_ran_differed_from_its_commit(tmp_path):
    assert git_state(tmp_path) == (None, None)  # not a checkout
    package = tmp_path / "package"
    package.mkdir()
    (package / "settings.py").write_text("bound_rule = 'band'\n")
    (tmp_path / "notes.txt").write_text("outside the package\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert git_state(package) == (head, False)
    (package / "scratch.py").write_text("untracked files are not the code that ran\n")
    (tmp_path / "notes.txt").write_text("changed, but outside the package\n")
    assert git_state(package) == (head, False)
    (package / "settings.py").write_text("bound_rule = 'band-pool'\n")
    assert git_state(package) == (head, True)


def test_the_environment_asks_git_about_the_whole_package(monkeypatch):
    import harmonycloak
    from harmonycloak.bench.unlearnability import report

    asked = []
    monkeypatch.setattr(report, "git_state", lambda directory: asked.append(Path(directory).resolve()) or ("c", True))
    environment = report.current_environment()
    # a change to the settings or a cloak is code that ran, as much as one to the benchmark's own folder
    assert asked == [Path(harmonycloak.__file__).parent.resolve()]
    assert (environment["git_commit"], environment["git_changed"]) == ("c", True)
