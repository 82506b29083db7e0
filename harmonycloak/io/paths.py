"""Where outputs go: the protected file's name beside its input or in an output folder, and the
(input, output) pairs of a command line's files and folders."""

from __future__ import annotations

from pathlib import Path

from harmonycloak.io.audio import SUPPORTED_EXTENSIONS
from harmonycloak.io.midi import MIDI_SUFFIXES

OUTPUT_MARKERS = (".protected.", ".preview.")  # names our own outputs carry; folder scans skip them


def default_output_path(input_path: Path, output: Path | None, preview: bool = False) -> Path:
    """song.flac → song.protected.flac (or song.preview.flac), beside it or inside `output` if a folder."""
    name = f"{input_path.stem}.{'preview' if preview else 'protected'}{input_path.suffix}"
    if output is None:
        return input_path.with_name(name)
    if output.is_dir() or str(output).endswith(("/", "\\")):
        output.mkdir(parents=True, exist_ok=True)
        return output / name
    return output


def expand_inputs(inputs: list[Path], output: Path | None) -> list[tuple[Path, Path | None]]:
    """Files stay as given; folders give their supported audio and MIDI files, recursively, in sorted order.

    With an output folder, a folder's files keep their relative paths under it. With no
    output, each protected file goes beside its input (`default_output_path` names it). A path
    that does not exist is kept, so that it fails with its own message while the others go on.
    """
    jobs: list[tuple[Path, Path | None]] = []
    several = len(inputs) > 1 or any(path.is_dir() for path in inputs)
    for path in inputs:
        if path.is_dir():
            suffixes = (*SUPPORTED_EXTENSIONS, *MIDI_SUFFIXES)
            for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes):
                if any(marker in file.name for marker in OUTPUT_MARKERS):
                    continue
                target = None
                if output is not None:
                    target = output / file.relative_to(path).parent
                    target.mkdir(parents=True, exist_ok=True)
                jobs.append((file, target))
        else:
            if output is not None and several:
                output.mkdir(parents=True, exist_ok=True)
            jobs.append((path, output))
    return jobs
