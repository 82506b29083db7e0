"""The command line: one-line errors, exit codes, no output on failure, folders."""

import json
import math

import numpy as np
import pytest
import soundfile

from harmonycloak.cli import main

QUICK = ["--cloak", "dominant", "--objective", "minmin", "--preset", "tiny", "--rounds", "1", "--no-report"]


def tone_wav(path, rate=22_050, channels=1, seconds=1.0, subtype="PCM_16"):
    time = np.arange(round(seconds * rate)) / rate
    samples = np.repeat((0.3 * np.sin(2 * math.pi * 440 * time))[:, None], channels, axis=1)
    soundfile.write(path, samples, rate, subtype=subtype)
    return path


def bad_inputs(folder):
    """(name, file, words the error must contain) for every kind of bad input."""
    cases = []
    (folder / "notes.wav").write_text("these are my lyrics, not audio")
    cases.append(("not audio", folder / "notes.wav", "notes.wav"))
    soundfile.write(folder / "empty.wav", np.zeros((0, 1)), 22_050)
    cases.append(("zero length", folder / "empty.wav", "no audio"))
    nan = np.full((2_000, 1), 0.1)
    nan[500] = np.nan
    soundfile.write(folder / "nan.wav", nan, 22_050, subtype="FLOAT")
    cases.append(("NaN samples", folder / "nan.wav", "NaN"))
    inf = np.full((2_000, 1), 0.1)
    inf[7] = np.inf
    soundfile.write(folder / "inf.wav", inf, 22_050, subtype="FLOAT")
    cases.append(("Inf samples", folder / "inf.wav", "inf"))
    soundfile.write(folder / "nine.wav", np.zeros((1_000, 9)) + 0.1, 22_050)
    cases.append(("9 channels", folder / "nine.wav", "9 channels"))
    tone_wav(folder / "slow.wav", rate=4_000)
    cases.append(("4 kHz", folder / "slow.wav", "4000 Hz"))
    tone_wav(folder / "fast.wav", rate=200_000, seconds=0.1)
    cases.append(("200 kHz", folder / "fast.wav", "200000 Hz"))
    whole = tone_wav(folder / "whole.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(whole[: len(whole) // 3])
    cases.append(("truncated", folder / "truncated.wav", "truncated"))
    (folder / "song.xyz").write_bytes(whole)
    cases.append(("unsupported", folder / "song.xyz", "song.xyz"))
    cases.append(("missing", folder / "missing.flac", "does not exist"))
    return cases


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return bad_inputs(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("index", range(10))
def test_each_bad_input_gets_a_one_line_error_and_no_output(bad_files, tmp_path, capsys, index):
    name, path, words = bad_files[index]
    output = tmp_path / f"out{path.suffix}"
    code = main(["protect", str(path), "-o", str(output), *QUICK])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1, name
    assert error[0].startswith("error: ") and path.name in error[0], name
    assert words.lower() in error[0].lower(), (name, error[0])
    assert "Traceback" not in "\n".join(error)
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_output_equal_to_input_is_refused_without_overwrite(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav")
    before = song.read_bytes()
    assert main(["protect", str(song), "-o", str(song), *QUICK]) == 1
    assert "song.wav" in capsys.readouterr().err
    assert song.read_bytes() == before


def test_overwrite_does_what_its_help_says_it_replaces_the_input_itself_and_an_existing_output(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["protect", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--overwrite replace outputs that exist already (also the input itself" in help_text
    song = tone_wav(tmp_path / "song.wav")
    before = song.read_bytes()
    assert main(["protect", str(song), "-o", str(song), "--overwrite", *QUICK]) == 0
    after = song.read_bytes()
    assert after != before and soundfile.info(str(song)).frames == 22_050  # protected in place, whole
    other = tmp_path / "other.wav"
    other.write_bytes(b"an existing file of the user's")
    assert main(["protect", str(song), "-o", str(other), *QUICK]) == 0
    assert "exists already" in capsys.readouterr().out and other.read_bytes() == b"an existing file of the user's"
    assert main(["protect", str(song), "-o", str(other), "--overwrite", *QUICK]) == 0
    assert soundfile.info(str(other)).frames == 22_050


def test_a_folder_with_one_bad_file_protects_the_others_and_says_some_failed(tmp_path, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    tone_wav(folder / "01 good.wav")
    (folder / "02 bad.wav").write_text("not audio")
    out = tmp_path / "protected"
    code = main(["protect", str(folder), "-o", str(out), *QUICK])
    captured = capsys.readouterr()
    assert code == 1
    assert (out / "01 good.protected.wav").exists() and not (out / "02 bad.protected.wav").exists()
    assert "02 bad.wav" in captured.err and "1 of 2 file(s) failed" in captured.err
    assert "protected" in captured.out


def test_protect_writes_beside_the_input_by_default_and_verify_prints_both_sides(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav", seconds=2.0)
    assert main(["protect", str(song), "--preset", "tiny", "--rounds", "1"]) == 0
    protected = tmp_path / "song.protected.wav"
    assert protected.exists() and (tmp_path / "song.protected.report.json").exists()
    capsys.readouterr()
    assert main(["verify", str(song), str(protected), "--steps", "3", "--json", str(tmp_path / "v.json")]) == 0
    printed = capsys.readouterr().out
    for words in ("ViSQOL", "SNR", "noise-to-mask", "loudness change", "How protected"):
        assert words in printed
    assert printed.strip().splitlines()[-1].startswith("verdict: ")
    assert (tmp_path / "v.json").exists()


def test_verify_ends_with_a_verdict_and_fails_if_audible_only_when_asked(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav", seconds=2.0, subtype="FLOAT")
    samples, rate = soundfile.read(song)
    noise = np.random.default_rng(0).standard_normal(samples.shape)
    for name, level in (("loud", 0.1), ("quiet", 1e-5)):  # SNR about 6.5 dB and 86 dB against the 0.3 sine
        soundfile.write(tmp_path / f"{name}.wav", samples + level * noise, rate, subtype="FLOAT")
    quick = ["--no-protection-check", "--no-visqol"]
    assert main(["verify", str(song), str(tmp_path / "loud.wav"), *quick]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("verdict: inaudible by our checks: no")
    assert main(["verify", str(song), str(tmp_path / "loud.wav"), *quick, "--fail-if-audible"]) == 1
    capsys.readouterr()
    assert main(["verify", str(song), str(tmp_path / "quiet.wav"), *quick, "--fail-if-audible", "-q"]) == 0
    verdict = capsys.readouterr().out.strip().splitlines()
    assert len(verdict) == 1 and verdict[0].startswith("verdict: inaudible by our checks: yes")
    assert "ViSQOL" not in verdict[0]  # skipped on request: not judged


def test_bad_settings_are_one_line_errors_with_exit_code_2(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav")
    assert main(["protect", str(song), "--mode", "whitebox", *QUICK]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["protect", str(song), "--window-ms", "500", *QUICK]) == 2
    assert "5 to 100 ms" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error
        main(["protect", str(song), "--jobs", "0"])
    assert usage.value.code == 2 and "at least 1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [song]


def test_a_second_run_over_a_folder_skips_what_exists_and_says_so(tmp_path, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    for name in ("01 intro.wav", "02 outro.flac"):  # silent: copied through, so the runs take no time
        soundfile.write(folder / name, np.zeros((4_000, 2)), 22_050)
    out = tmp_path / "protected"
    assert main(["protect", str(folder), "-o", str(out), *QUICK]) == 0
    outputs = sorted(p for p in out.iterdir() if p.suffix != ".jsonl")
    assert [p.name for p in outputs] == ["01 intro.protected.wav", "02 outro.protected.flac"]
    written = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in outputs}  # a rewrite changes both
    capsys.readouterr()

    assert main(["protect", str(folder), "-o", str(out), "-v", *QUICK]) == 0
    printed = capsys.readouterr()
    assert printed.out.count("skipped") == 2 and "done already" in printed.out
    assert "0 protected, 2 complete already" in printed.out
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in outputs} == written
    manifest = out / "harmonycloak-manifest.jsonl"
    assert sorted(out.iterdir()) == sorted([*outputs, manifest])

    # an output the manifest does not know (the user's own file) is left alone and said so
    manifest.unlink()
    assert main(["protect", str(folder), "-o", str(out), *QUICK]) == 0
    printed = capsys.readouterr()
    assert printed.out.count("skipped") == 2 and "exists already" in printed.out and "--overwrite" in printed.out
    assert {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in outputs} == written

    assert main(["protect", str(folder), "-o", str(out), "--overwrite", *QUICK]) == 0
    assert "skipped" not in capsys.readouterr().out
    assert all((p.stat().st_mtime_ns, p.stat().st_ino) != written[p] for p in outputs)


def test_an_empty_folder_says_there_is_nothing_to_protect(tmp_path, capsys):
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "cover.jpg").write_bytes(b"\xff\xd8 not music")
    assert main(["protect", str(tmp_path / "album"), *QUICK]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {tmp_path / 'album'}: nothing to protect")
    assert sorted(p.name for p in (tmp_path / "album").iterdir()) == ["cover.jpg"]


def test_protect_with_the_future_cue_objective_needs_no_model_and_says_so_in_its_report(tmp_path, capsys):
    rate = 22_050
    time = np.arange(3 * rate) / rate
    beat = 0.05 + 0.3 * (np.floor(time * 4) % 2)  # a level that steps up and down four times a second
    soundfile.write(tmp_path / "beat.wav", (beat * np.sin(2 * math.pi * 330 * time))[:, None], rate)
    assert main(["protect", str(tmp_path / "beat.wav"), "--objective", "future-cue", "--cloak", "masked",
                 "--rounds", "1"]) == 0
    report = json.loads((tmp_path / "beat.protected.report.json").read_text())
    assert report["settings"]["objective"] == report["objective"] == "future-cue"
    assert report["surrogates"] == []
    protected, _ = soundfile.read(tmp_path / "beat.protected.wav")
    original, _ = soundfile.read(tmp_path / "beat.wav")
    assert 0 < np.abs(protected - original).max() < 0.3


def test_the_band_pool_bound_rule_is_the_masked_cloak_s_default_and_its_report_records_it(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav")
    assert main(["protect", str(song), "--cloak", "dominant", "--bound-rule", "bin", *QUICK]) == 2
    assert "--cloak masked" in capsys.readouterr().err
    # audio's default cloak and bound rule; the objective's effort, the paper's for the cue
    assert main(["protect", str(song), "--objective", "future-cue", "--report", "json"]) == 0
    report = json.loads((tmp_path / "song.protected.report.json").read_text())
    assert report["settings"]["bound_rule"] == "band-pool" and report["settings"]["cloak"] == "masked-gain"
    assert (report["settings"]["pgd_steps"], report["settings"]["max_rounds"]) == (20, 3)


def test_protect_reads_the_zoo_models_it_is_given_and_its_report_names_them(tmp_path, capsys):
    song = tone_wav(tmp_path / "song.wav")
    assert main(["protect", str(song), "--zoo-models", "ar-gru", "--report", "json"]) == 0
    report = json.loads((tmp_path / "song.protected.report.json").read_text())
    assert report["settings"]["zoo_models"] == ["ar-gru"] and report["surrogates"] == ["ar-gru"]
    assert main(["protect", str(song), "--zoo-models", "musegan", "--overwrite"]) == 1
    error = capsys.readouterr().err
    assert "'musegan' is not an audio model" in error and "Traceback" not in error


def test_an_audio_only_objective_is_refused_for_midi_in_one_line(tmp_path, capsys):
    from pathlib import Path

    chorale = Path(__file__).resolve().parents[1] / "examples" / "bwv1.6.mid"
    assert main(["protect", str(chorale), "-o", str(tmp_path / "out.mid"), *QUICK, "--objective", "future-cue"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the future-cue objective is for audio") and "Traceback" not in error


def test_every_option_has_help_and_every_command_an_example_epilog():
    import argparse

    from harmonycloak.cli import _parser

    def commands(parser, name="harmonycloak"):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from commands(sub, f"{name} {sub_name}")

    found = dict(commands(_parser()))
    assert {"harmonycloak protect", "harmonycloak verify", "harmonycloak bench catalogue", "harmonycloak zoo list"} <= set(found)
    for name, parser in found.items():
        assert parser.epilog and parser.epilog.startswith("examples:\n  harmonycloak "), name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}"


def test_quiet_prints_nothing_but_errors_and_verbose_says_why(tmp_path, capsys):
    folder = tmp_path / "album"
    folder.mkdir()
    soundfile.write(folder / "a.wav", np.zeros((4_000, 1)), 22_050)  # silent: copied through at once
    (folder / "b.wav").write_text("not audio")
    assert main(["protect", str(folder), "-o", str(tmp_path / "out"), "-q", *QUICK]) == 1
    printed = capsys.readouterr()
    assert printed.out == "" and [line.split(":")[0] for line in printed.err.splitlines()] == ["error", "1 of 2 file(s) failed"]
    assert main(["protect", str(folder), "-o", str(tmp_path / "out"), "-v", *QUICK]) == 1
    printed = capsys.readouterr()
    assert "skipped" in printed.out and "done already" in printed.out and "failed in an earlier run" in printed.out


def test_bench_attacks_given_alone_runs_no_attack_and_left_out_keeps_the_suite_s(monkeypatch, tmp_path):
    from harmonycloak.bench.unlearnability import benchmark
    from harmonycloak.cli import main

    asked = []
    monkeypatch.setattr(benchmark, "run_unlearnability", lambda *args, **kwargs: asked.append(kwargs["attacks"]))
    for extra in (["--attacks"], ["--attacks", "aac-128k", "opus-96k"], []):
        assert main(["bench", "unlearnability", "--suite", "smoke", "--out", str(tmp_path), *extra]) == 0
    assert asked == [(), ("aac-128k", "opus-96k"), None]


def test_bench_bound_rule_reaches_the_benchmark_and_left_out_keeps_the_suite_s(monkeypatch, tmp_path):
    from harmonycloak.bench.unlearnability import benchmark

    asked = []
    monkeypatch.setattr(benchmark, "run_unlearnability", lambda *args, **kwargs: asked.append(kwargs["bound_rule"]))
    for extra in (["--bound-rule", "band"], []):
        assert main(["bench", "unlearnability", "--suite", "smoke", "--out", str(tmp_path), *extra]) == 0
    assert asked == ["band", None]


def test_bench_scratch_learning_rate_reaches_the_benchmark_and_left_out_keeps_the_suite_s(monkeypatch, tmp_path):
    from harmonycloak.bench.unlearnability import benchmark

    asked = []
    monkeypatch.setattr(benchmark, "run_unlearnability",
                        lambda *args, **kwargs: asked.append(kwargs["scratch_learning_rate"]))
    for extra in (["--scratch-learning-rate", "3e-3"], []):
        assert main(["bench", "unlearnability", "--suite", "smoke", "--out", str(tmp_path), *extra]) == 0
    assert asked == [3e-3, None]


def test_bench_style_judged_reaches_the_benchmark_and_left_out_keeps_the_suite_s(monkeypatch, tmp_path):
    from harmonycloak.bench.unlearnability import benchmark

    asked = []
    monkeypatch.setattr(benchmark, "run_unlearnability", lambda *args, **kwargs: asked.append(kwargs["style_judged"]))
    for extra in (["--style-judged", "musegan", "symphonynet"], []):
        assert main(["bench", "unlearnability", "--suite", "smoke", "--out", str(tmp_path), *extra]) == 0
    assert asked == [("musegan", "symphonynet"), None]


def test_the_benchmark_s_attacker_options_become_the_fine_tune_recipe_and_bad_values_are_usage_errors(capsys):
    from harmonycloak.cli import _mimicry_recipe, _parser

    parser = _parser()
    arguments = parser.parse_args(["bench", "unlearnability", "--mimicry-recipe", "lora", "--mimicry-learning-rate",
                                   "1e-3", "--mimicry-steps", "200", "--probe-steps", "25", "50"])
    assert _mimicry_recipe(arguments) == {"kind": "lora", "steps": 200, "learning_rate": 1e-3}
    assert arguments.probe_steps == [25, 50]
    assert _mimicry_recipe(parser.parse_args(["bench", "unlearnability"])) is None  # the suite's own recipe
    assert _mimicry_recipe(parser.parse_args(["bench", "unlearnability", "--mimicry-steps", "400"])) == {"steps": 400}
    for bad in (["--mimicry-learning-rate", "0"], ["--mimicry-learning-rate", "inf"], ["--probe-steps", "0"],
                ["--mimicry-recipe", "dreambooth"]):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(["bench", "unlearnability", *bad])
        assert stopped.value.code == 2
    assert "must be a number above 0, not 0" in capsys.readouterr().err
