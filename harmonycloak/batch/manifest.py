"""The manifest of a batch: one JSON line per event of a file, appended as they happen.

A file's events are `started` (handed to a worker), then `done` or `failed`. A `done` line
holds what a later run needs to trust the output without redoing it: the input's path and
SHA-256, the settings, the output's path and SHA-256, and the seconds it took. The last line
of a file decides; a `started` line without a later one is a file that was cut off.

Paths are written relative to the manifest's folder (the output folder), so a catalogue
moved together with its outputs keeps its manifest. Each line is written whole with one
`write` on a file opened for appending, then flushed to disk; a process killed in the middle
of a line leaves a last line without its newline, which reading skips and the next append
closes first.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from harmonycloak.errors import HarmonyCloakError

MANIFEST_NAME = "harmonycloak-manifest.jsonl"
STATUSES = ("started", "done", "failed")
_HASH_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class Manifest:
    """The manifest file of one folder: read once, then appended to.

    Args:
        folder: the folder the manifest lives in and its paths are relative to.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.latest: dict[str, dict] = {}  # input key → its last record
        if self.path.exists():
            for record in read_records(self.path):
                self.latest[record["input"]] = record

    def key(self, path: str | Path) -> str:
        """A path as the manifest writes it: relative to the manifest's folder (links are not
        followed: a linked input keeps the name it has in the batch)."""
        return os.path.relpath(os.path.abspath(path), os.path.abspath(self.folder))

    def record_for(self, input_path: str | Path) -> dict | None:
        return self.latest.get(self.key(input_path))

    def append(self, record: dict) -> None:
        """Write one record as one line, flushed to disk; remember it as its input's latest.

        Raises:
            HarmonyCloakError: the manifest cannot be written (naming it).
        """
        if record.get("status") not in STATUSES:
            raise ValueError(f"a manifest record's status is one of {STATUSES}, not {record.get('status')!r}")
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            with open(self.path, "a+b") as handle:
                handle.seek(0, os.SEEK_END)
                if handle.tell():
                    handle.seek(-1, os.SEEK_END)
                    if handle.read(1) != b"\n":  # the last line of a killed run: close it first
                        line = "\n" + line
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            raise HarmonyCloakError(f"the manifest cannot be written ({error.strerror or error})", self.path) from error
        self.latest[record["input"]] = record


def read_records(path: str | Path) -> list[dict]:
    """Every whole record of a manifest file, in order; lines that are not whole JSON objects
    (the last line of a killed run) are skipped."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "input" in record and record.get("status") in STATUSES:
                records.append(record)
    return records
