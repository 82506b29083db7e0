"""The app's job queue: one worker thread runs the jobs one after another, each in its own folder
under the app's root folder, with progress, an estimate of the time left, and cancelling.

The queue knows nothing of music: what a job does is the `run` function it is given
(`app.protection.protect_job`), called as ``run(job, progress)`` where ``progress(done, total)``
is the protect flow's progress callback. Cancelling works through that callback: at its next
call it raises `JobCancelled`, which unwinds the flow before it writes anything (outputs are
written atomically, so nothing half-written is left).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harmonycloak.app.uploads import QueueFullError
from harmonycloak.errors import HarmonyCloakError
from harmonycloak.flows.results import ProgressCallback
from harmonycloak.settings import ProtectionSettings

FINISHED_STATES = ("done", "failed", "cancelled")
WORKER_STOP_WAIT_S = 30.0  # on shutdown, how long to wait for a running job to unwind before removing its files


class JobCancelled(Exception):
    """Raised inside a running job by its progress callback once the job is cancelled."""


@dataclass
class Job:
    """One uploaded file and what becomes of it. Times are `time.monotonic()` seconds."""

    id: str  # 32 hex digits (uuid4), made by the queue
    name: str  # the upload's name (`uploads.upload_name`)
    folder: Path  # the job's own folder: input/, output/, ab/
    settings: ProtectionSettings
    state: str = "queued"  # queued → running → done | failed | cancelled
    phase: str = "waiting"  # what a running job is doing, in words
    done_units: int = 0  # the flow's progress: units done of total_units
    total_units: int = 0
    created_s: float = field(default_factory=time.monotonic)
    started_s: float | None = None
    finished_s: float | None = None
    first_update: tuple[float, int] | None = None  # (time, units done) at the flow's first progress call
    cancel_requested: bool = False
    deleted: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)  # what `run` made: paths (not sent to the page) and facts

    @property
    def input_path(self) -> Path:
        return self.folder / "input" / self.name

    @property
    def output_folder(self) -> Path:
        return self.folder / "output"

    def fraction_done(self) -> float:
        if self.state in FINISHED_STATES:
            return 1.0
        return self.done_units / self.total_units if self.total_units else 0.0

    def eta_s(self, now_s: float) -> float | None:
        """Seconds left for the optimisation at the pace since the flow's first progress call; None
        until two calls have set a pace; 0 once the optimisation is over (writing the file and the
        report afterwards takes seconds that no progress call measures)."""
        if self.state != "running" or self.first_update is None:
            return None
        first_s, first_units = self.first_update
        if self.total_units and self.done_units >= self.total_units:
            return 0.0
        if self.done_units <= first_units or now_s <= first_s:
            return None
        seconds_per_unit = (now_s - first_s) / (self.done_units - first_units)
        return seconds_per_unit * (self.total_units - self.done_units)

    def elapsed_s(self, now_s: float) -> float | None:
        if self.started_s is None:
            return None
        return (self.finished_s or now_s) - self.started_s


RunJob = Callable[[Job, ProgressCallback], None]


class JobQueue:
    """Jobs by id, in the order they came, run one at a time by a worker thread.

    Args:
        root: the app's own folder; each job's folder is made inside it, and `close` removes it.
        run: what a job does (`app.protection.protect_job`).
        max_waiting: how many jobs may be queued or running at once; `add` refuses more.
    """

    def __init__(self, root: Path, run: RunJob, max_waiting: int) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.run = run
        self.max_waiting = max_waiting
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="harmonycloak-jobs", daemon=True)
        self._worker.start()

    # --- adding and finding jobs

    def check_room(self) -> None:
        """Raise `QueueFullError` when no further job may be added now."""
        with self._lock:
            waiting = sum(job.state in ("queued", "running") for job in self._jobs.values())
        if waiting >= self.max_waiting:
            raise QueueFullError(f"the queue is full ({waiting} files waiting or running, the limit is "
                                 f"{self.max_waiting}); wait for some to finish or remove some")

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its folder (made, empty): the caller writes the upload there, then `add`s."""
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        (folder / "input").mkdir(parents=True)
        (folder / "output").mkdir()
        return job_id, folder

    def add(self, job_id: str, name: str, folder: Path, settings: ProtectionSettings) -> Job:
        """Queue the job whose upload is in `folder`; on `QueueFullError` the caller removes the folder."""
        self.check_room()
        job = Job(job_id, name, folder, settings)
        with self._lock:
            self._jobs[job_id] = job
            self._lock.notify_all()
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None: only ids the queue made are ever looked up."""
        with self._lock:
            job = self._jobs.get(job_id)
        return None if job is None or job.deleted else job

    def jobs(self) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if not job.deleted]

    # --- cancelling and removing

    def cancel(self, job: Job) -> None:
        """A queued job is cancelled at once; a running one at the flow's next progress call."""
        with self._lock:
            if job.state == "queued":
                job.state, job.phase, job.finished_s = "cancelled", "cancelled", time.monotonic()
            elif job.state == "running":
                job.cancel_requested, job.phase = True, "cancelling"

    def delete(self, job: Job) -> None:
        """Forget the job and remove its folder (a running job's once it has unwound)."""
        with self._lock:
            job.deleted = True
            running = job.state == "running"
            if running:
                job.cancel_requested = True
            del self._jobs[job.id]
        if not running:
            shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the worker (cancelling a running job) and remove the app's root folder with every job."""
        with self._lock:
            self._stopping = True
            for job in self._jobs.values():
                job.cancel_requested = True
            self._lock.notify_all()
        self._worker.join(WORKER_STOP_WAIT_S)
        shutil.rmtree(self.root, ignore_errors=True)

    # --- the whole queue, for the page

    def overall(self, now_s: float) -> dict:
        """Counts, the share done, and an estimate of the seconds left for every job not finished.

        A waiting job is estimated at the mean time a finished job took, or, before any has
        finished, at the running job's elapsed plus remaining time; None when nothing sets a pace.
        """
        jobs = self.jobs()
        finished = [job for job in jobs if job.state in FINISHED_STATES]
        running = [job for job in jobs if job.state == "running"]
        queued = [job for job in jobs if job.state == "queued"]
        took = [job.elapsed_s(now_s) for job in finished if job.state == "done"]
        per_job_s = sum(took) / len(took) if took else None
        running_left = [job.eta_s(now_s) for job in running]
        if per_job_s is None and running and running_left[0] is not None:
            per_job_s = running[0].elapsed_s(now_s) + running_left[0]
        eta_s = None
        if (queued or running) and per_job_s is not None and all(left is not None for left in running_left):
            eta_s = sum(running_left) + per_job_s * len(queued)
        elif not queued and not running:
            eta_s = 0.0
        return {
            "jobs": len(jobs),
            "finished": len(finished),
            "done": sum(job.state == "done" for job in finished),
            "running": len(running),
            "queued": len(queued),
            "fraction_done": sum(job.fraction_done() for job in jobs) / len(jobs) if jobs else 1.0,
            "eta_s": eta_s,
        }

    # --- the worker

    def _next_job(self) -> Job | None:
        with self._lock:
            while not self._stopping:
                job = next((job for job in self._jobs.values() if job.state == "queued"), None)
                if job is not None:
                    job.state, job.phase, job.started_s = "running", "reading the song and preparing", time.monotonic()
                    return job
                self._lock.wait()
        return None

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            self._run_one(job)

    def _run_one(self, job: Job) -> None:
        def progress(done_units: int, total_units: int) -> None:
            if job.cancel_requested:
                raise JobCancelled()
            now_s = time.monotonic()
            with self._lock:
                if job.first_update is None:
                    job.first_update = (now_s, done_units)
                job.done_units, job.total_units = done_units, total_units
                job.phase = "writing the file and the report" if done_units >= total_units else "optimising the noise"

        try:
            self.run(job, progress)
            state, error = "done", None
        except JobCancelled:
            state, error = "cancelled", None
        except HarmonyCloakError as failure:  # named as the musician knows it: no folder of the server's
            named = failure.path is None or failure.path == job.input_path
            state, error = "failed", failure.message if named else f"{failure.path.name}: {failure.message}"
        except OSError as failure:
            state, error = "failed", failure.strerror or str(failure)
        except Exception as failure:  # a worker that dies would stop the whole queue: report it, go on
            traceback.print_exc(file=sys.stderr)
            state, error = "failed", f"unexpected error: {type(failure).__name__}: {failure}"
        with self._lock:
            job.state, job.error, job.finished_s = state, error, time.monotonic()
            job.phase = {"done": "done", "cancelled": "cancelled", "failed": "failed"}[state]
            deleted = job.deleted
        if deleted:
            shutil.rmtree(job.folder, ignore_errors=True)


def make_root() -> Path:
    """A new private folder for one running app (removed by `JobQueue.close`)."""
    return Path(tempfile.mkdtemp(prefix="harmonycloak-app-"))
