"""Catalogue throughput: tracks per hour of `protect FOLDER` with one job and with several, and
the time a batch killed with SIGKILL loses when it is resumed.

Each run is the command line in a child process, as a label would run it (start-up, reading,
writing and the manifest included). The killed run is stopped half a track's time after its
first file is complete, then run again to the end; what it loses is the wall time of both
runs together minus one clean run's. Every run's outputs are compared byte for byte with the
one-job run's.

    harmonycloak bench catalogue --folder /usr/share/games/wesnoth/1.16/data/core/music --tracks 6 --jobs 1 2
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from harmonycloak.batch.manifest import MANIFEST_NAME, file_sha256, read_records
from harmonycloak.errors import SettingsError
from harmonycloak.io.audio import SUPPORTED_EXTENSIONS, read_audio


def shortest_tracks(folder: Path, count: int) -> list[Path]:
    """The `count` shortest audio files of `folder` that are not silent, shortest first."""
    import numpy as np

    durations = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in SUPPORTED_EXTENSIONS and path.is_file():
            audio = read_audio(path)
            if np.abs(audio.samples).max() > 1e-3:
                durations.append((audio.duration_s, path))
    if len(durations) < count:
        raise SettingsError(f"the folder holds {len(durations)} audible tracks, not {count}", folder)
    return [path for _, path in sorted(durations)[:count]]


def run_catalogue_benchmark(folder: Path, tracks: int, jobs: list[int], protect_arguments: list[str],
                            threads: int | None, json_path: Path | None, log=print) -> dict:
    """Time `protect` over the `tracks` shortest tracks of `folder` with each of `jobs`, then a
    killed and resumed one-job run; print and return the figures."""
    chosen = shortest_tracks(folder, tracks)
    preview_s = float(protect_arguments[protect_arguments.index("--preview") + 1]) \
        if "--preview" in protect_arguments else math.inf
    audio_s = sum(min(read_audio(path).duration_s, preview_s) for path in chosen)  # what is protected
    log(f"{tracks} tracks, {audio_s:.1f} s of audio to protect in all: {', '.join(p.name for p in chosen)}")
    log(f"settings: protect {' '.join(protect_arguments) or '(defaults)'}; torch threads in all: "
        f"{threads or 'torch default'}; load average before: {os.getloadavg()[0]:.2f}")
    environment = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    results: dict = {"tracks": [p.name for p in chosen], "audio_s": audio_s, "arguments": protect_arguments,
                     "threads": threads, "runs": {}}
    with tempfile.TemporaryDirectory() as scratch:
        album = Path(scratch) / "album"
        album.mkdir()
        for path in chosen:
            (album / path.name).symlink_to(path)

        def command(out: Path, job_count: int) -> list[str]:
            return [sys.executable, "-m", "harmonycloak.cli", "protect", str(album), "-o", str(out),
                    "--jobs", str(job_count), "-q", *protect_arguments]

        reference = None
        for job_count in jobs:
            out = Path(scratch) / f"jobs-{job_count}"
            started = time.perf_counter()
            subprocess.run(command(out, job_count), env=environment, check=True)
            wall_s = time.perf_counter() - started
            hashes = _output_hashes(out)
            reference = reference or hashes
            results["runs"][f"jobs {job_count}"] = {
                "wall_s": wall_s, "tracks_per_hour": 3600 * tracks / wall_s, "real_time_factor": wall_s / audio_s,
                "same_bytes_as_first": hashes == reference,
            }
            log(f"--jobs {job_count}: {wall_s:.1f} s, {3600 * tracks / wall_s:.0f} tracks per hour "
                f"(wall time / audio time {wall_s / audio_s:.2f}); outputs the same bytes as the first run: "
                f"{'yes' if hashes == reference else 'NO'}")

        clean_s = results["runs"][f"jobs {jobs[0]}"]["wall_s"]
        out = Path(scratch) / "killed"
        started = time.perf_counter()
        child = subprocess.Popen(command(out, jobs[0]), env=environment)
        while not (out / MANIFEST_NAME).exists() or not _done(out):
            if child.poll() is not None:
                raise RuntimeError("the batch ended before its first file was complete")
            time.sleep(0.05)
        first_done_s = time.perf_counter() - started
        time.sleep(min(clean_s / tracks / 2, clean_s - first_done_s))  # half a track's time into the next
        child.send_signal(signal.SIGKILL)
        killed_at = datetime.now(timezone.utc)
        child.wait()
        killed_s = time.perf_counter() - started
        before_resume = read_records(out / MANIFEST_NAME)
        complete_at_kill = sum(1 for r in before_resume if r["status"] == "done")
        cut_off = [r for r in before_resume if r["status"] == "started"
                   and not any(d["input"] == r["input"] and d["status"] == "done" for d in before_resume)]
        discarded_s = sum((killed_at - datetime.fromisoformat(r["time"])).total_seconds() for r in cut_off)
        resumed_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        subprocess.run(command(out, jobs[0]), env=environment, check=True)
        resumed_s = time.perf_counter() - started
        records = read_records(out / MANIFEST_NAME)
        first_new = min(datetime.fromisoformat(r["time"]) for r in records[len(before_resume):])
        restart_s = (first_new - resumed_at).total_seconds()
        redone = sum(1 for r in records if r["status"] == "done") - tracks
        results["killed"] = {"killed_after_s": killed_s, "complete_at_kill": complete_at_kill, "resumed_s": resumed_s,
                             "work_discarded_s": discarded_s, "restart_s": restart_s,
                             "wall_s_against_clean_run": killed_s + resumed_s - clean_s,
                             "complete_files_redone": redone, "same_bytes_as_first": _output_hashes(out) == reference}
        log(f"killed with SIGKILL after {killed_s:.1f} s ({complete_at_kill} of {tracks} complete, {len(cut_off)} cut "
            f"off), resumed in {resumed_s:.1f} s. Lost: {discarded_s:.1f} s of the cut-off file's work and "
            f"{restart_s:.1f} s of restart (start-up, checking the manifest) until the next file began; both runs "
            f"together took {killed_s + resumed_s - clean_s:+.1f} s against the clean run of {clean_s:.1f} s. Complete "
            f"files redone: {redone}; outputs the same bytes: "
            f"{'yes' if results['killed']['same_bytes_as_first'] else 'NO'}")
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _done(out: Path) -> list[dict]:
    return [r for r in read_records(out / MANIFEST_NAME) if r["status"] == "done"]


def _output_hashes(out: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(out.iterdir()) if ".protected." in p.name
            and not p.name.endswith((".json", ".png"))}
