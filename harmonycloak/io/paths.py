"""Where outputs go: the protected file's name beside its input or in an output folder, and the
(input, output) pairs of a command line's files and folders."""

from __future__ import annotations

from pathlib import Path

from harmonycloak.errors import HarmonyCloakError
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
    that does not exist, and a folder without a file to protect, are kept, so that each fails
    with its own message (`check_input`) while the others go on.
    """
    jobs: list[tuple[Path, Path | None]] = []
    several = len(inputs) > 1 or any(path.is_dir() for path in inputs)
    for path in inputs:
        if path.is_dir():
            suffixes = (*SUPPORTED_EXTENSIONS, *MIDI_SUFFIXES)
            files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in suffixes
                     and not any(marker in p.name for marker in OUTPUT_MARKERS)]
            if not files:
                jobs.append((path, output))
            for file in files:
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


def check_input(path: Path) -> None:
    """Refuse a folder that `expand_inputs` kept because it holds no file to protect.

    Raises:
        HarmonyCloakError: naming the folder.
    """
    if path.is_dir():
        raise HarmonyCloakError("nothing to protect: the folder holds no audio or MIDI file "
                                "(outputs named *.protected.* or *.preview.* are left out)", path)
