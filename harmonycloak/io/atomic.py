"""Write a file all at once or not at all, and only where the user allows it.

The new file is written under a hidden temporary name in the same folder (so the final rename
stays on one file system and is atomic), then moved over the target with `os.replace`. On any
error, and on Ctrl-C, the temporary file is removed and the target is left as it was; an
error of the file system (a full disk) becomes the caller's one-line error. A process killed
outright (SIGKILL, power loss) leaves at most a hidden ``.NAME.<hex>.partial.EXT`` file, never
a partial file under the target's name; the next write of that target removes it. The writer
holds an advisory lock (flock) on its temporary file until it is done, and the lock dies with
its process, so a temporary file whose lock is free was left by a killed writer, while one
still locked belongs to a writer at work. Two processes writing one target end with one of
their files, whole.

`refuse_to_replace` is the one policy on outputs: never the input itself, never an existing
file, unless the user allows overwriting.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from harmonycloak.errors import AudioFileError, HarmonyCloakError, OutputExistsError


@contextlib.contextmanager
def atomic_output(path: str | Path, error_class: type[HarmonyCloakError] = AudioFileError) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary file keeps the target's extension (encoders choose their format from it)
    and is created empty with the user's usual permissions (mode 0o666 minus the umask).

    Raises:
        error_class (AudioFileError unless told): the folder does not exist or cannot be written
            to, or writing fails in the file system (an OSError inside the block: a full disk).
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise error_class(f"the folder {str(folder)!r} does not exist", path)
    if path.is_dir():
        raise error_class("this is a folder; give the name of a file to write", path)
    _remove_left_temporaries(path)
    temp = folder / f".{path.stem}.{secrets.token_hex(_TOKEN_BYTES)}{_PARTIAL}{path.suffix}"
    try:
        # os.open with mode 0o666 applies the umask, as a plain open() would; mkstemp would
        # give 0o600 and make the protected file private.
        lock = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except OSError as error:
        raise error_class(f"cannot write into this folder ({error.strerror})", path) from error
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the end: see the module docstring
        yield temp
        os.replace(temp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(error, OSError):
            raise error_class(f"writing the file failed ({error.strerror or error})", path) from error
        raise
    finally:
        os.close(lock)


_TOKEN_BYTES = 6
_PARTIAL = ".partial"


def _remove_left_temporaries(path: Path) -> None:
    """Remove the temporary files of ``path`` that killed writers left (their lock is free)."""
    prefix, suffix = f".{path.stem}.", f"{_PARTIAL}{path.suffix}"
    for name in os.listdir(path.parent):
        token = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
        if len(token) != 2 * _TOKEN_BYTES or not all(c in "0123456789abcdef" for c in token):
            continue
        try:
            handle = os.open(path.parent / name, os.O_RDONLY)
        except OSError:
            continue  # gone meanwhile, or not ours to read
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # locked: a writer at work
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path.parent / name)
        finally:
            os.close(handle)


def refuse_to_replace(input_path: str | Path, output_path: str | Path, overwrite: bool,
                      error_class: type[HarmonyCloakError] = AudioFileError) -> None:
    """Refuse, before any work, an output that is a folder, lies in a folder that is missing or
    cannot be written to, is the input itself, or exists already.

    The input itself (also through a link, or another spelling of its path) and an existing
    file may be replaced when ``overwrite`` is true.

    Raises:
        error_class: the output is a folder, its folder is missing or read-only, or it is the
            input and ``overwrite`` is false.
        OutputExistsError: the output exists and ``overwrite`` is false.
    """
    output_path, input_path = Path(output_path), Path(input_path)
    if output_path.is_dir():
        raise error_class("the output is a folder; give the name of a file to write", output_path)
    folder = output_path.parent
    if not folder.is_dir():
        raise error_class(f"the folder {str(folder)!r} does not exist", output_path)
    if not os.access(folder, os.W_OK):  # also false for root on a read-only file system
        raise error_class("cannot write into this folder (it is read-only)", output_path)
    if overwrite:
        return
    exists = output_path.exists()
    if (exists and input_path.exists() and os.path.samefile(input_path, output_path)) \
            or output_path.resolve() == input_path.resolve():
        raise error_class("the output would replace the original file; choose another output name "
                          "or allow overwriting", output_path)
    if exists or output_path.is_symlink():
        raise OutputExistsError("exists already; allow overwriting (--overwrite) to replace it", output_path)


def write_text(path: str | Path, text: str, error_class: type[HarmonyCloakError] = HarmonyCloakError) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Raises:
        error_class: the folder does not exist, or the file cannot be written.
    """
    path = Path(path)
    try:
        with atomic_output(path, error_class) as temporary:
            temporary.write_text(text, encoding="utf-8")
    except OSError as error:
        raise error_class(f"cannot be written ({error.strerror or error})", path) from error
    return path
