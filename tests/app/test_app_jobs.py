"""The job queue on its own: order, time left, cancelling, removing, failures. The work here is a
stand-in that reports progress as the protect flow does; the real flow runs in test_app_api.py."""

import threading

import pytest

from app_helpers import wait_until
from harmonycloak.app.jobs import Job, JobQueue
from harmonycloak.errors import AudioFileError
from harmonycloak.settings import ProtectionSettings


def job_at(done_units, total_units, first_update, state="running"):
    job = Job("0" * 32, "song.wav", None, ProtectionSettings(), state=state, started_s=0.0)
    job.done_units, job.total_units, job.first_update = done_units, total_units, first_update
    return job


def test_a_jobs_time_left_follows_its_pace_since_the_first_progress_call():
    job = job_at(6, 10, first_update=(10.0, 2))
    assert job.eta_s(18.0) == pytest.approx(8.0)  # 4 units in 8 s: 2 s a unit, 4 units left
    assert job_at(2, 10, first_update=(10.0, 2)).eta_s(18.0) is None  # no pace yet
    assert job_at(0, 0, first_update=None).eta_s(18.0) is None
    assert job_at(10, 10, first_update=(10.0, 2)).eta_s(18.0) == 0.0  # writing the file: nothing measured left
    assert job_at(6, 10, first_update=(10.0, 2), state="done").eta_s(18.0) is None


def add(queue, name):
    job_id, folder = queue.new_folder()
    return queue.add(job_id, name, folder, ProtectionSettings())


def test_jobs_run_one_at_a_time_in_order_and_the_rest_is_estimated_from_the_finished(tmp_path):
    gates = {name: threading.Event() for name in "abc"}
    started = []

    def run(job, progress):
        started.append(job.name)
        progress(0, 10)
        progress(5, 10)
        gates[job.name].wait()

    queue = JobQueue(tmp_path / "root", run, max_waiting=3)
    a, b, c = (add(queue, name) for name in "abc")
    wait_until(lambda: a.done_units == 5, "a's progress")
    assert (a.state, b.state, c.state) == ("running", "queued", "queued") and started == ["a"]
    gates["a"].set()
    wait_until(lambda: b.done_units == 5, "b's progress")
    assert a.state == "done" and started == ["a", "b"]
    now_s = b.first_update[0] + 4.0
    overall = queue.overall(now_s)
    assert overall["eta_s"] == pytest.approx(b.eta_s(now_s) + a.elapsed_s(now_s))  # b's rest, then c at a's time
    assert b.eta_s(now_s) == pytest.approx(4.0)  # 5 units in 4 s, 5 to go
    assert overall["fraction_done"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert (overall["done"], overall["running"], overall["queued"]) == (1, 1, 1)
    gates["b"].set()
    gates["c"].set()
    wait_until(lambda: c.state == "done", "c")
    assert queue.overall(now_s)["eta_s"] == 0.0
    queue.close()
    assert not (tmp_path / "root").exists()


def test_cancelling_a_running_job_stops_it_at_its_next_progress_call(tmp_path):
    calls = []

    def run(job, progress):
        while True:
            calls.append(1)
            progress(1, 10)

    queue = JobQueue(tmp_path / "root", run, max_waiting=2)
    job = add(queue, "song.wav")
    wait_until(lambda: calls, "the first progress call")
    queue.cancel(job)
    wait_until(lambda: job.state == "cancelled", "the cancel")
    queue.close()


def test_removing_a_running_job_removes_its_folder_once_it_has_stopped(tmp_path):
    def run(job, progress):
        (job.output_folder / "partial").write_bytes(b"")
        while True:
            progress(1, 10)

    queue = JobQueue(tmp_path / "root", run, max_waiting=2)
    job = add(queue, "song.wav")
    wait_until(lambda: (job.output_folder / "partial").exists(), "the job's start")
    queue.delete(job)
    assert queue.get(job.id) is None and queue.jobs() == []
    wait_until(lambda: not job.folder.exists(), "the folder's removal")
    queue.close()


def test_a_failing_job_says_why_in_plain_words_and_the_next_one_runs(tmp_path):
    def run(job, progress):
        if job.name == "bad.wav":
            raise AudioFileError("the file is empty", job.input_path)
        if job.name == "bug.wav":
            raise ZeroDivisionError("division by zero")

    queue = JobQueue(tmp_path / "root", run, max_waiting=3)
    bad, bug, good = (add(queue, name) for name in ("bad.wav", "bug.wav", "good.wav"))
    wait_until(lambda: good.state == "done", "the good job")
    assert (bad.state, bad.error) == ("failed", "the file is empty")  # the message, without the server's path
    assert bug.state == "failed" and bug.error == "unexpected error: ZeroDivisionError: division by zero"
    queue.close()
