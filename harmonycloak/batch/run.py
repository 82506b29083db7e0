"""Run a batch: plan it against its manifest, hand the files to a backend, record each event,
and say what happened.

    summary = run_batch(pairs, BatchOptions(settings), manifest_folder=Path("protected"), jobs=2)

Each file's events go to the manifest as they happen (`started` when handed out, then `done`
or `failed`), each output is written atomically by its worker, and the manifest line comes
after the output: a batch killed at any moment leaves whole outputs, at most some `started`
files that the next run finishes, and no complete file that it redoes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from dataclasses import dataclass, field
from pathlib import Path

from harmonycloak.batch.backends import in_processes, in_this_process, on_ray
from harmonycloak.batch.manifest import Manifest
from harmonycloak.batch.plan import (
    COMPLETE,
    EXISTS,
    RUN,
    FileJob,
    PlannedFile,
    plan_batch,
    settings_fingerprint,
    song_groups,
)
from harmonycloak.batch.worker import BatchOptions, FileOutcome
from harmonycloak.errors import SettingsError
from harmonycloak.progress import BatchProgress
from harmonycloak.settings import BACKENDS

# (level, line): "protected", "skipped" and "error" lines for every file that is not left as
# complete; "verbose" for the complete ones and the reasons; "warning" for a file's warnings.
Log = Callable[[str, str], None]


@dataclass
class BatchSummary:
    """What a batch did, file by file, and how long it took."""

    outcomes: list[FileOutcome] = field(default_factory=list)  # the files that ran
    complete: list[PlannedFile] = field(default_factory=list)  # skipped: done already
    not_ours: list[PlannedFile] = field(default_factory=list)  # skipped: an output exists that is not ours
    seconds: float = 0.0
    manifest_path: Path | None = None

    @property
    def failed(self) -> list[FileOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    @property
    def protected(self) -> list[FileOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "done"]

    def as_json(self) -> dict:
        """One JSON-ready object: counts, throughput and one entry per file."""
        files = [{"input": str(o.job.input_path), "output": str(o.job.output_path), "status": o.status,
                  "seconds": o.seconds, "output_sha256": o.output_sha256,
                  "report": None if o.report_path is None else str(o.report_path),
                  "picture": None if o.picture_path is None else str(o.picture_path),
                  "warnings": o.warnings, "error": o.error} for o in self.outcomes]
        files += [{"input": str(p.job.input_path), "output": str(p.job.output_path),
                   "status": "skipped", "reason": p.reason} for p in (*self.complete, *self.not_ours)]
        return {
            "protected": len(self.protected),
            "skipped": len(self.complete) + len(self.not_ours),
            "failed": len(self.failed),
            "seconds": self.seconds,
            "tracks_per_hour": 3600 * len(self.protected) / self.seconds if self.protected and self.seconds else None,
            "manifest": None if self.manifest_path is None else str(self.manifest_path),
            "files": files,
        }


def run_batch(pairs: list[tuple[Path, Path | None]], options: BatchOptions, *, manifest_folder: Path | None,
              overwrite: bool = False, jobs: int = 1, backend: str = "local", address: str | None = None,
              log: Log = lambda level, line: None, show_progress: bool = True) -> BatchSummary:
    """Protect every (input, output file or folder or None) pair that is not complete already.

    Args:
        manifest_folder: where the manifest lives (the output folder); None: no manifest (an
            existing output is then never ours, and is skipped unless `overwrite`).
        jobs: worker processes on this machine (`backend` "local").
        backend: "local" or "ray"; `address` is the Ray cluster's.
        log: called with (level, line) for what a user may want printed.
    """
    started_at = time.perf_counter()
    if jobs < 1:
        raise SettingsError(f"the number of jobs (--jobs) must be at least 1, not {jobs}")
    if backend not in BACKENDS:
        raise SettingsError(f"the backend must be one of {', '.join(BACKENDS)}, not '{backend}'")
    manifest = Manifest(manifest_folder) if manifest_folder is not None else None
    manifest_is_new = manifest is not None and not manifest.path.exists()
    planned = plan_batch(pairs, options.settings, manifest, overwrite)
    summary = BatchSummary(manifest_path=manifest.path if manifest is not None else None)
    for item in planned:
        if item.decision == COMPLETE:
            summary.complete.append(item)
            log("verbose", f"skipped {item.job.input_path}: {item.reason}")
        elif item.decision == EXISTS:
            summary.not_ours.append(item)
            log("skipped", f"skipped {item.job.input_path}: {item.job.output_path} {item.reason}")
    to_run = [item for item in planned if item.decision == RUN]
    for item in to_run:
        log("verbose", f"to protect {item.job.input_path}: {item.reason}")

    fingerprint = settings_fingerprint(options.settings)
    description = to_run[0].job.input_path.name if len(to_run) == 1 else "protect"
    progress = BatchProgress(len(to_run), description, enabled=show_progress)

    def recorded(job: FileJob) -> bool:  # a folder with nothing to protect is the command line's error, not a file's
        return manifest is not None and not job.input_path.is_dir()

    def started(job: FileJob) -> None:
        if recorded(job):
            manifest.append(_record(manifest, job, fingerprint, "started"))

    groups = song_groups([item.job for item in to_run], options.settings)
    if backend == "ray":
        outcomes = on_ray(groups, options, started, address)
    elif jobs == 1 or len(groups) <= 1:
        outcomes = in_this_process(groups, options, started, progress.file_progress)
    else:
        outcomes = in_processes(groups, options, started, min(jobs, len(groups)))
    try:
        for outcome in outcomes:
            if recorded(outcome.job):
                manifest.append(_record(manifest, outcome.job, fingerprint, outcome.status, outcome))
            summary.outcomes.append(outcome)
            progress.file_done(outcome.status == "done")
            for warning in outcome.warnings:
                log("warning", f"warning: {warning}")
            if outcome.status == "done":
                log("protected", f"protected {outcome.job.input_path} → {outcome.job.output_path}"
                                 + (f"  (report: {outcome.report_path})" if outcome.report_path else ""))
            else:
                log("error", f"error: {outcome.error}")
    finally:
        progress.close()
    if manifest_is_new and not summary.protected and manifest.path.exists():
        manifest.path.unlink()  # every file failed: a failed run leaves nothing behind (a killed one does)
    summary.seconds = time.perf_counter() - started_at
    return summary


def _record(manifest: Manifest, job: FileJob, fingerprint: dict, status: str, outcome: FileOutcome | None = None) -> dict:
    """One manifest line (see `batch.manifest`)."""
    from harmonycloak import __version__

    record = {"input": manifest.key(job.input_path), "output": manifest.key(job.output_path), "status": status,
              "settings": fingerprint, "harmonycloak_version": __version__,
              "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    if outcome is not None:
        record |= {"seconds": round(outcome.seconds, 3), "input_sha256": outcome.input_sha256,
                   "output_sha256": outcome.output_sha256}
        if outcome.report_path is not None:
            record["report"] = manifest.key(outcome.report_path)
        if outcome.error is not None:
            record["error"] = outcome.error
    return record
