"""Where the files of a batch run. Each backend takes the jobs in groups (`plan.song_groups`: one
file, or several audio files optimised together), calls `started(job)` for each file of a group
as it hands the group out, and yields each `FileOutcome` as it comes back (groups in the order
they finish).

    in_this_process   one file after another, with the optimiser's progress on the bar
    in_processes      N worker processes on this machine, torch threads split between them
    on_ray            the tasks of a Ray cluster (`--backend ray --address ADDR`)

Every backend runs the same `FileProtector` on the same settings and groups, and a file's output
depends on its settings, seed and group alone, so the outputs are the same bytes whichever runs them.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterator, Sequence

from harmonycloak.batch.plan import FileJob
from harmonycloak.batch.worker import (
    BatchOptions,
    FileOutcome,
    FileProtector,
    protect_in_worker,
    protect_on_ray,
    start_worker,
)
from harmonycloak.errors import SettingsError
from harmonycloak.flows.results import ProgressCallback
from harmonycloak.optional import import_optional

Started = Callable[[FileJob], None]


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """This process's torch threads (or `threads`) shared out between `workers`, at least one each."""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return max(1, threads // workers)


def in_this_process(groups: Sequence[list[FileJob]], options: BatchOptions, started: Started,
                    progress: ProgressCallback | None = None) -> Iterator[FileOutcome]:
    protector = FileProtector(options)
    for group in groups:
        for job in group:
            started(job)
        yield from protector.protect_group(group, progress)


def in_processes(groups: Sequence[list[FileJob]], options: BatchOptions, started: Started,
                 workers: int) -> Iterator[FileOutcome]:
    """`workers` spawned processes (a fresh interpreter each: no state forked from this one), each
    with its share of the torch threads, and at most one group each in flight."""
    if workers < 1:
        raise SettingsError(f"the number of jobs (--jobs) must be at least 1, not {workers}")
    threads = threads_per_worker(workers)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker,
                                                initargs=(options, threads)) as pool:
        yield from _windowed(groups, started, workers, lambda group: pool.submit(protect_in_worker, group),
                             _wait_futures, lambda future: future.result())


def on_ray(groups: Sequence[list[FileJob]], options: BatchOptions, started: Started,
           address: str | None) -> Iterator[FileOutcome]:
    """One Ray task per group, one CPU each, on the cluster at `address` (this process's cluster
    if it is connected to one already). The files' paths must be the same on every node (a
    shared file system): the tasks read and write them where they are."""
    ray = import_optional("ray", "the Ray backend")
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="warning", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise SettingsError(f"cannot reach the Ray cluster at {address!r} ({error})") from error
    task = ray.remote(num_cpus=1)(protect_on_ray)
    in_flight = max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))  # enough to keep every CPU busy
    options_ref = ray.put(options)

    def wait(handles: list) -> tuple[list, list]:
        return ray.wait(handles, num_returns=1)

    yield from _windowed(groups, started, in_flight, lambda group: task.remote(options_ref, 1, group), wait, ray.get)


def _wait_futures(futures: list) -> tuple[list, list]:
    done, pending = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
    return list(done), list(pending)


def _windowed(groups: Sequence[list[FileJob]], started: Started, window: int, submit: Callable, wait: Callable,
              result: Callable) -> Iterator[FileOutcome]:
    """Keep at most `window` groups in flight; hand out the next as each comes back."""
    queue = list(groups)[::-1]
    in_flight: list = []
    while queue or in_flight:
        while queue and len(in_flight) < window:
            group = queue.pop()
            for job in group:
                started(job)
            in_flight.append(submit(group))
        done, in_flight = wait(in_flight)
        for handle in done:
            yield from result(handle)
