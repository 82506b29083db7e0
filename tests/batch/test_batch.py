"""Batches of files: the manifest, re-runs that skip what is complete and redo what changed, a
batch killed with SIGKILL and resumed, and parallel workers whose outputs equal one worker's."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from harmonycloak.batch.manifest import MANIFEST_NAME, Manifest, file_sha256, read_records
from harmonycloak.cli import main
from input_makers import file_hashes

# the fastest settings that still optimise against a bag: the paper's method with seconds-fast surrogates
QUICK = ["--cloak", "dominant", "--objective", "minmin", "--preset", "tiny", "--rounds", "1"]
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
START_TIMEOUT_S = 300  # the child imports PyTorch first: seconds on a busy machine


def tone_album(folder: Path, frequencies_hz=(440.0, 550.0, 660.0), seconds: float = 1.0, rate: int = 22_050) -> Path:
    """One float WAV per frequency (a float file shows every bit of the output's samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    time_s = np.arange(round(seconds * rate)) / rate
    for index, frequency_hz in enumerate(frequencies_hz):
        samples = 0.3 * np.sin(2 * math.pi * frequency_hz * time_s) * (1 + 0.5 * np.sin(2 * math.pi * 3 * time_s))
        soundfile.write(folder / f"{index + 1:02d} track.wav", samples.astype(np.float32), rate, subtype="FLOAT")
    return folder


def outputs_of(folder: Path) -> dict[str, str]:
    """sha256 of each protected file in ``folder``."""
    return {name: digest for name, digest in file_hashes(folder).items() if ".protected." in name
            and not name.endswith((".json", ".png"))}


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(mtime, inode) of each protected file: a rewrite (atomic replace) changes both."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in folder.glob("*.protected.*")}


def done_records(folder: Path) -> list[dict]:
    return [r for r in read_records(folder / MANIFEST_NAME) if r["status"] == "done"]


# --- the manifest file ------------------------------------------------------------------------

def test_a_manifest_line_cut_by_a_kill_is_skipped_and_the_next_append_closes_it(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.append({"input": "a.wav", "output": "a.protected.wav", "status": "started"})
    with open(manifest.path, "a") as handle:
        handle.write('{"input": "b.wav", "status": "do')  # a kill in the middle of a line
    reread = Manifest(tmp_path)
    assert list(reread.latest) == ["a.wav"] and reread.latest["a.wav"]["status"] == "started"
    reread.append({"input": "a.wav", "output": "a.protected.wav", "status": "done"})
    assert [(r["input"], r["status"]) for r in read_records(manifest.path)] == [("a.wav", "started"),
                                                                               ("a.wav", "done")]
    assert Manifest(tmp_path).record_for(tmp_path / "a.wav")["status"] == "done"
    with pytest.raises(ValueError):
        manifest.append({"input": "a.wav", "status": "half"})


def test_file_sha256_matches_hashlib_on_a_file_larger_than_one_chunk(tmp_path):
    import hashlib

    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)
    (tmp_path / "blob").write_bytes(data)
    assert file_sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


# --- re-runs ----------------------------------------------------------------------------------

def test_a_rerun_skips_what_is_complete_and_redoes_what_changed(tmp_path, capsys):
    album = tone_album(tmp_path / "album")
    out = tmp_path / "out"
    assert main(["protect", str(album), "-o", str(out), *QUICK]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST_NAME] + [f"{i:02d} track.protected{suffix}" for i in (1, 2, 3) for suffix in (".wav", ".report.json")])
    first, first_stamps = outputs_of(out), stamps(out)
    records = done_records(out)
    assert [r["input"] for r in records] == [f"../album/{i:02d} track.wav" for i in (1, 2, 3)]
    for record in records:  # each line holds the hashes of what is on disk
        assert record["input_sha256"] == file_sha256(out / record["input"])
        assert record["output_sha256"] == file_sha256(out / record["output"]) and record["seconds"] > 0
        assert record["settings"]["model_preset"] == "tiny" and record["settings"]["seed"] == 0
    capsys.readouterr()

    # nothing changed: nothing is redone, and --json says so in one object
    assert main(["protect", str(album), "-o", str(out), "--json", *QUICK]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["protected"], summary["skipped"], summary["failed"]) == (0, 3, 0)
    assert stamps(out) == first_stamps

    # one input changed, one output deleted, one output altered by hand
    tone_album(tmp_path / "changed", frequencies_hz=(500.0,))
    (tmp_path / "changed" / "01 track.wav").replace(album / "01 track.wav")
    (out / "02 track.protected.wav").unlink()
    assert main(["protect", str(album), "-o", str(out), "--json", *QUICK]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["protected"], summary["skipped"], summary["failed"]) == (2, 1, 0)
    now = stamps(out)
    assert now["03 track.protected.wav"] == first_stamps["03 track.protected.wav"]  # untouched
    assert now["01 track.protected.wav"] != first_stamps["01 track.protected.wav"]
    assert outputs_of(out)["01 track.protected.wav"] != first["01 track.protected.wav"]  # a new song, new noise
    assert outputs_of(out)["02 track.protected.wav"] == first["02 track.protected.wav"]  # same seed, same bytes
    assert Manifest(out).record_for(album / "01 track.wav")["input_sha256"] == file_sha256(album / "01 track.wav")

    # new settings redo everything (our own outputs are replaced without --overwrite)
    assert main(["protect", str(album), "-o", str(out), "--json", "--seed", "1", *QUICK]) == 0
    assert json.loads(capsys.readouterr().out)["protected"] == 3
    assert all(outputs_of(out)[name] != digest for name, digest in first.items() if not name.startswith("01"))

    # an output altered by hand is not ours any more: left alone without --overwrite
    (out / "03 track.protected.wav").write_bytes(b"my own edit")
    assert main(["protect", str(album), "-o", str(out), "--seed", "1", *QUICK]) == 0
    assert "skipped" in capsys.readouterr().out and (out / "03 track.protected.wav").read_bytes() == b"my own edit"


def test_a_batch_writes_the_json_report_only_unless_asked_and_a_single_file_both(tmp_path):
    album = tone_album(tmp_path / "album", frequencies_hz=(440.0,))
    assert main(["protect", str(album), "-o", str(tmp_path / "out"), "--objective", "future-cue", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.report.*")) == ["01 track.protected.report.json"]
    single = tmp_path / "single"
    assert main(["protect", str(album / "01 track.wav"), "-o", f"{single}/", "--objective", "future-cue", "-q"]) == 0
    assert sorted(p.name for p in single.iterdir()) == [
        "01 track.protected.report.json", "01 track.protected.report.png", "01 track.protected.wav"]  # no manifest
    assert main(["protect", str(album), "-o", str(tmp_path / "png"), "--objective", "future-cue", "-q",
                 "--report", "png"]) == 0
    assert len(list((tmp_path / "png").glob("*.report.png"))) == 1


# --- killed and resumed -----------------------------------------------------------------------

def test_a_batch_killed_with_sigkill_loses_nothing_and_a_rerun_finishes_it_without_redoing(tmp_path):
    album = tone_album(tmp_path / "album")
    clean = tmp_path / "clean"
    assert main(["protect", str(album), "-o", str(clean), *QUICK, "-q"]) == 0  # the reference: one clean run

    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-m", "harmonycloak.cli", "protect", str(album), "-o", str(out), *QUICK],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV)
    with child:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ((out / MANIFEST_NAME).exists() and done_records(out)):  # the first file is complete
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never finished a file"
            time.sleep(0.01)
        child.kill()
        child.communicate(timeout=START_TIMEOUT_S)
    assert child.returncode == -signal.SIGKILL
    completed = {r["output"] for r in done_records(out)}
    assert completed and len(completed) < 3, "the kill came after the whole batch: nothing was cut off"
    # nothing half-written: every output under its name is whole and equal to the clean run's
    for name, digest in outputs_of(out).items():
        assert digest == outputs_of(clean)[name]
    before = stamps(out)

    assert main(["protect", str(album), "-o", str(out), *QUICK, "-q"]) == 0
    assert outputs_of(out) == outputs_of(clean)  # all three, byte for byte
    for name in completed:
        assert stamps(out)[name] == before[name]  # not redone
    records = read_records(out / MANIFEST_NAME)
    for name in completed:
        assert [r["status"] for r in records if r["output"] == name] == ["started", "done"]
    assert not [p.name for p in out.iterdir() if ".partial" in p.name]  # no temporary file left behind


# --- parallel workers -------------------------------------------------------------------------

def test_two_worker_processes_write_the_same_bytes_as_one(tmp_path, capsys):
    album = tone_album(tmp_path / "album")
    assert main(["protect", str(album), "-o", str(tmp_path / "one"), *QUICK, "--jobs", "1", "-q"]) == 0
    assert main(["protect", str(album), "-o", str(tmp_path / "two"), *QUICK, "--jobs", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["protected"] == 3 and summary["tracks_per_hour"] > 0
    assert outputs_of(tmp_path / "two") == outputs_of(tmp_path / "one") and len(outputs_of(tmp_path / "one")) == 3
    assert {r["input"] for r in done_records(tmp_path / "two")} == {r["input"] for r in done_records(tmp_path / "one")}


def test_the_threads_are_split_between_workers():
    from harmonycloak.batch.backends import threads_per_worker

    assert [threads_per_worker(n, 16) for n in (1, 2, 3, 16, 32)] == [16, 8, 5, 1, 1]


def test_a_worker_hands_each_file_untrained_copies_of_the_surrogates_it_built_once():
    from harmonycloak.batch.worker import BatchOptions, FileProtector
    from harmonycloak.models.bag import build_audio_bag
    from harmonycloak.settings import ProtectionSettings

    protector = FileProtector(BatchOptions(ProtectionSettings(objective="minmin", model_preset="tiny", seed=3)))
    first = protector.audio_surrogates()
    with torch.no_grad():
        for parameter in first[0].parameters():
            parameter.add_(1.0)  # what the optimisation does to the models it is given
    second = protector.audio_surrogates()
    fresh = build_audio_bag(10, 3, tiny=True)
    assert second[0] is not first[0]
    for copied, built in zip(second, fresh):
        assert all(torch.equal(a, b) for a, b in zip(copied.state_dict().values(), built.state_dict().values()))


# --- a Ray cluster ----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_local_ray_cluster_writes_the_same_bytes_and_the_same_manifest(tmp_path, capsys, monkeypatch):
    ray = pytest.importorskip("ray")
    album = tone_album(tmp_path / "album", frequencies_hz=(440.0, 550.0))
    assert main(["protect", str(album), "-o", str(tmp_path / "local"), *QUICK, "-q"]) == 0
    if "PYTHONPATH" not in os.environ:  # the workers import the package this test imports
        monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    context = ray.init(num_cpus=1, include_dashboard=False, logging_level="error", log_to_driver=False)
    try:
        address = context.address_info["gcs_address"]
        code = main(["protect", str(album), "-o", str(tmp_path / "ray"), *QUICK, "--backend", "ray",
                     "--address", address, "--json"])
    finally:
        ray.shutdown()
    assert code == 0
    assert json.loads(capsys.readouterr().out)["protected"] == 2
    assert outputs_of(tmp_path / "ray") == outputs_of(tmp_path / "local") and len(outputs_of(tmp_path / "ray")) == 2
    assert [r["status"] for r in read_records(tmp_path / "ray" / MANIFEST_NAME)].count("done") == 2


# --- several songs per optimisation ------------------------------------------------------------

def test_song_groups_hold_audio_files_in_order_and_leave_midi_and_stems_alone(tmp_path):
    from harmonycloak.batch.plan import FileJob, song_groups
    from harmonycloak.settings import ProtectionSettings

    names = ["a.wav", "b.flac", "c.mid", "d.ogg", "e.wav", "f.mp3"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    jobs = [FileJob(tmp_path / name, tmp_path / f"out-{name}", False) for name in names]
    grouped = song_groups(jobs, ProtectionSettings(songs_per_batch=2))
    assert [[job.input_path.name for job in group] for group in grouped] == [
        ["a.wav", "b.flac"], ["c.mid"], ["d.ogg", "e.wav"], ["f.mp3"]]
    assert song_groups(jobs, ProtectionSettings(songs_per_batch=2, stems=True)) == [[job] for job in jobs]
    assert song_groups(jobs, ProtectionSettings()) == [[job] for job in jobs]


def test_songs_optimised_together_are_recorded_resumed_and_a_bad_file_fails_alone(tmp_path, capsys):
    album = tone_album(tmp_path / "album", frequencies_hz=(440.0, 550.0, 660.0, 770.0))
    (album / "03 track.wav").write_bytes(b"RIFF not really a wave file")  # the second group: a bad file and a good one
    out = tmp_path / "out"
    code = main(["protect", str(album), "-o", str(out), *QUICK, "--songs-per-batch", "2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["protected"] == 3 and summary["failed"] == 1
    assert [f["input"].endswith("03 track.wav") for f in summary["files"] if f["status"] == "failed"] == [True]
    reports = {p.name: json.loads(p.read_text()) for p in out.glob("*.json") if p.name != MANIFEST_NAME}
    together = {name.split(".")[0]: report.get("songs_optimised_together") for name, report in reports.items()}
    assert together == {"01 track": 2, "02 track": 2, "04 track": None}  # the bad file's partner ran alone
    assert all(r["settings"]["songs_per_batch"] == 2 for r in done_records(out))
    before = stamps(out)
    (album / "03 track.wav").unlink()
    assert main(["protect", str(album), "-o", str(out), *QUICK, "--songs-per-batch", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["protected"] == 0 and stamps(out) == before
