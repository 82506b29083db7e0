"""Write a file all at once or not at all.

The new file is written under a hidden temporary name in the same folder (so the final rename
stays on one file system and is atomic), then moved over the target with `os.replace`. On any
error the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from harmonycloak.errors import AudioFileError, HarmonyCloakError


@contextlib.contextmanager
def atomic_output(path: str | Path, error_class: type[HarmonyCloakError] = AudioFileError) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary file keeps the target's extension (encoders choose their format from it)
    and is created empty with the user's usual permissions (mode 0o666 minus the umask).

    Raises:
        error_class (AudioFileError unless told): the folder does not exist or cannot be written to.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise error_class(f"the folder {str(folder)!r} does not exist", path)
    temp = folder / f".{path.stem}.{secrets.token_hex(6)}.partial{path.suffix}"
    try:
        # os.open with mode 0o666 applies the umask, as a plain open() would; mkstemp would
        # give 0o600 and make the protected file private.
        os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as error:
        raise error_class(f"cannot write into this folder ({error.strerror})", path) from error
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
