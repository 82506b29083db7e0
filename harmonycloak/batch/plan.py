"""Which files of a batch to protect, and which to leave.

A file is *complete* when its manifest's last record says `done` with the same input bytes
(SHA-256), the same settings, and the same output path, and that output is still there with
the bytes recorded: it is skipped. Everything else runs: a new file, a changed input or
changed settings (the earlier output, ours by the manifest, is replaced), a file that was cut
off (`started` and nothing after), a failed file, or a missing or altered output.

An output that exists and that no record shows as ours (a file of the user's, or of a run
without a manifest) is left alone unless overwriting is allowed: the file is reported as
skipped. `--overwrite` redoes every file, complete ones too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harmonycloak.batch.manifest import Manifest, file_sha256
from harmonycloak.io.paths import default_output_path
from harmonycloak.settings import ProtectionSettings

RUN, COMPLETE, EXISTS = "run", "complete", "exists"  # what the plan does with a file
_ALLOW = "allow overwriting (--overwrite) to replace it"


@dataclass(frozen=True)
class FileJob:
    """One file for a worker: where from, where to, and whether an existing output may be replaced."""

    input_path: Path
    output_path: Path
    may_replace: bool


@dataclass(frozen=True)
class PlannedFile:
    job: FileJob
    decision: str  # RUN, COMPLETE or EXISTS
    reason: str  # why, in words ("new", "the input changed", ...)


def settings_fingerprint(settings: ProtectionSettings) -> dict:
    """The settings as the manifest stores and compares them: JSON values, and the white-box
    checkpoint's SHA-256 (a retrained model under the same name changes the output)."""
    values = json.loads(json.dumps(settings.as_report()))
    if settings.model_checkpoint is not None and Path(settings.model_checkpoint).is_file():
        values["model_sha256"] = file_sha256(settings.model_checkpoint)
    return values


def plan_batch(pairs: Iterable[tuple[Path, Path | None]], settings: ProtectionSettings, manifest: Manifest | None,
               overwrite: bool) -> list[PlannedFile]:
    """Decide for each (input, output file or folder or None) pair; see the module docstring."""
    fingerprint = settings_fingerprint(settings)
    planned = []
    outputs_planned: set[Path] = set()
    for input_path, output in pairs:
        output_path = default_output_path(input_path, output, settings.preview_s is not None)
        if output_path.resolve() in outputs_planned:  # the same file given twice, or two inputs of one name
            planned.append(PlannedFile(FileJob(input_path, output_path, may_replace=False), EXISTS,
                                       "is the output of an earlier input of this batch"))
            continue
        outputs_planned.add(output_path.resolve())
        record = manifest.record_for(input_path) if manifest is not None else None
        decision, reason, ours = _decide(input_path, output_path, record, fingerprint,
                                         manifest.key(output_path) if manifest is not None else None)
        if overwrite:
            decision, reason = RUN, "overwriting allowed" if decision != RUN else reason
        planned.append(PlannedFile(FileJob(input_path, output_path, may_replace=overwrite or ours), decision, reason))
    return planned


def _decide(input_path: Path, output_path: Path, record: dict | None, fingerprint: dict,
            output_key: str | None) -> tuple[str, str, bool]:
    """(decision, reason, whether an existing output is ours to replace)."""
    exists = output_path.exists()
    if exists and input_path.exists() and output_path.resolve() == input_path.resolve():
        return RUN, "the output is the input", False  # the flow refuses it, unless overwriting is allowed
    if record is None or record["output"] != output_key:
        return (EXISTS, f"exists already; {_ALLOW}", False) if exists else (RUN, "new", False)
    if record["status"] == "started":
        return RUN, "cut off in an earlier run", True
    output_hash = file_sha256(output_path) if exists and output_path.is_file() else None
    ours = record["status"] == "done" and output_hash == record["output_sha256"]
    if exists and not ours:
        return EXISTS, f"exists already and is not the output the manifest records; {_ALLOW}", False
    if record["status"] == "failed":
        return RUN, "failed in an earlier run", ours
    if not exists:
        return RUN, "the output is missing", ours
    if record["settings"] != fingerprint:
        return RUN, "the settings changed", ours
    if not input_path.is_file() or file_sha256(input_path) != record["input_sha256"]:
        return RUN, "the input changed", ours
    return COMPLETE, "done already (same input, settings and output)", ours


def song_groups(jobs: list[FileJob], settings: ProtectionSettings) -> list[list[FileJob]]:
    """The units a batch hands out: audio files in groups of `settings.songs_per_batch`, in the
    order given (optimised together, `flows.audio.protect.protect_songs`); every other file
    (MIDI, a folder with nothing to protect) and every file of a stems run alone."""
    from harmonycloak.flows.dispatch import file_kind

    size = 1 if settings.stems else settings.songs_per_batch
    groups: list[list[FileJob]] = []
    open_group: list[FileJob] = []
    for job in jobs:
        if size > 1 and job.input_path.is_file() and file_kind(job.input_path) == "audio":
            open_group.append(job)
            if len(open_group) == size:
                groups.append(open_group)
                open_group = []
        else:
            groups.append([job])
    return groups + ([open_group] if open_group else [])
