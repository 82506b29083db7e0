"""Protect one file of a batch, in whichever process runs it.

A `FileProtector` lives as long as its process: it sets the process's torch threads once, and
builds the surrogate models of an audio batch once (black-box bag, zoo models or white-box
checkpoint: they depend on the settings alone), handing each file a fresh copy of those
untouched models, because the optimisation trains the models it is given. A copy of the same
weights gives the same output as building them again; building costs the time to initialise
or load them for every file.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from harmonycloak.batch.manifest import file_sha256
from harmonycloak.batch.plan import FileJob
from harmonycloak.errors import HarmonyCloakError
from harmonycloak.flows.results import ProgressCallback
from harmonycloak.settings import ProtectionSettings


@dataclass(frozen=True)
class BatchOptions:
    """What every file of a batch shares (sent once to each worker)."""

    settings: ProtectionSettings
    write_report: bool = True  # the JSON report beside each output
    picture: bool = False  # the report's picture too (a batch writes the JSON only unless asked)


@dataclass
class FileOutcome:
    """What became of one file; `run.py` turns it into the manifest's `done` or `failed` line."""

    job: FileJob
    status: str  # "done" or "failed"
    seconds: float
    input_sha256: str | None = None
    output_sha256: str | None = None
    report_path: Path | None = None
    picture_path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class FileProtector:
    """Protects the files of one batch in this process, one after another.

    Args:
        options: the batch's settings and report choice.
        threads: torch threads for this process (None: leave as they are).
    """

    def __init__(self, options: BatchOptions, threads: int | None = None) -> None:
        self.options = options
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self._pristine_surrogates: list | None = None

    def audio_surrogates(self) -> list:
        """A fresh copy of the batch's audio surrogates, built on the first call."""
        if self._pristine_surrogates is None:
            from harmonycloak.flows.audio.protect import build_surrogates
            from harmonycloak.settings import resolve_device

            self._pristine_surrogates = build_surrogates(self.options.settings,
                                                         resolve_device(self.options.settings.device))
        return copy.deepcopy(self._pristine_surrogates)

    def __call__(self, job: FileJob, progress: ProgressCallback | None = None) -> FileOutcome:
        """Protect `job`'s file; a user-facing error (a bad file, a bad setting for this file, a
        full disk) becomes a `failed` outcome with its one-line message."""
        from harmonycloak.flows.dispatch import file_kind, flows_for
        from harmonycloak.io.paths import check_input

        started = time.perf_counter()
        settings = self.options.settings
        try:
            check_input(job.input_path)
            input_sha256 = file_sha256(job.input_path) if job.input_path.is_file() else None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if file_kind(job.input_path) == "audio":
                    from harmonycloak.flows.audio.protect import protect_audio_file

                    result = protect_audio_file(job.input_path, job.output_path, settings, overwrite=job.may_replace,
                                                write_report=self.options.write_report,
                                                picture=self.options.picture, progress=progress,
                                                surrogates=self.audio_surrogates)
                else:
                    result = flows_for(job.input_path).protect(
                        job.input_path, job.output_path, settings, overwrite=job.may_replace,
                        write_report=self.options.write_report, picture=self.options.picture, progress=progress)
        except (HarmonyCloakError, OSError) as error:
            return _failed(job, time.perf_counter() - started, error)
        return _done(job, time.perf_counter() - started, input_sha256, result, caught)

    def protect_group(self, jobs: list[FileJob], progress: ProgressCallback | None = None) -> list[FileOutcome]:
        """Protect a group of files (`plan.song_groups`): one file as `__call__` does; several
        audio files read one by one, then cloaked in one optimisation (`protect_songs`). A file
        that cannot be read fails alone; an error while the group is optimised or written fails
        each file still in it. A file's seconds: its reading, and an equal share of the rest."""
        if len(jobs) == 1:
            return [self(jobs[0], progress)]
        from harmonycloak.flows.audio.protect import protect_songs, read_song_to_protect
        from harmonycloak.flows.results import ProtectionResult
        from harmonycloak.io.paths import check_input

        settings = self.options.settings
        outcomes: dict[FileJob, FileOutcome] = {}
        ready = []  # (job, song, input hash, seconds reading it, its warnings)
        for job in jobs:
            started = time.perf_counter()
            try:
                check_input(job.input_path)
                input_sha256 = file_sha256(job.input_path)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    song = read_song_to_protect(job.input_path, job.output_path, settings, job.may_replace)
            except (HarmonyCloakError, OSError) as error:
                outcomes[job] = _failed(job, time.perf_counter() - started, error)
                continue
            if isinstance(song, ProtectionResult):  # silent: passed through already
                outcomes[job] = _done(job, time.perf_counter() - started, input_sha256, song, caught)
            else:
                ready.append((job, song, input_sha256, time.perf_counter() - started, caught))
        if ready:
            started = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    results = protect_songs([song for _, song, *_ in ready], settings,
                                            write_report=self.options.write_report, picture=self.options.picture,
                                            progress=progress, surrogates=self.audio_surrogates)
            except (HarmonyCloakError, OSError) as error:
                share_s = (time.perf_counter() - started) / len(ready)
                for job, _, _, reading_s, _ in ready:
                    outcomes[job] = _failed(job, reading_s + share_s, error)
            else:
                share_s = (time.perf_counter() - started) / len(ready)
                for (job, _, input_sha256, reading_s, read_warnings), result in zip(ready, results):
                    outcomes[job] = _done(job, reading_s + share_s, input_sha256, result, [*read_warnings, *caught])
        return [outcomes[job] for job in jobs]


def _failed(job: FileJob, seconds: float, error: Exception) -> FileOutcome:
    """A `failed` outcome with the error's one-line message (an OSError said as a musician reads it)."""
    if isinstance(error, OSError) and not isinstance(error, HarmonyCloakError):
        error = HarmonyCloakError(error.strerror or str(error), error.filename)
    return FileOutcome(job, "failed", seconds, error=str(error))


def _done(job: FileJob, seconds: float, input_sha256: str | None, result, caught: list) -> FileOutcome:
    return FileOutcome(job, "done", seconds, input_sha256=input_sha256, output_sha256=file_sha256(result.output_path),
                       report_path=result.report_path, picture_path=result.picture_path,
                       warnings=[str(w.message) for w in caught])


# One protector per worker process (set by `start_worker`, the process pool's initializer, or
# on a Ray worker's first task): its surrogates outlive the file.
_protector: FileProtector | None = None


def start_worker(options: BatchOptions, threads: int | None) -> None:
    global _protector
    _protector = FileProtector(options, threads)


def protect_in_worker(group: list[FileJob]) -> list[FileOutcome]:
    """The task a worker process runs (after `start_worker`): one group of `plan.song_groups`."""
    assert _protector is not None, "start_worker was not called in this process"
    return _protector.protect_group(group)


def protect_on_ray(options: BatchOptions, threads: int, group: list[FileJob]) -> list[FileOutcome]:
    """The task a Ray worker runs: its process keeps one protector per batch's options."""
    if _protector is None or _protector.options != options:
        start_worker(options, threads)
    return protect_in_worker(group)
