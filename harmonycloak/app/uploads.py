"""What the app lets in: upload names that cannot reach outside a job's folder, and request
bodies no larger than the limit.

A name is refused rather than repaired when it holds a folder ('/' or '\\'), starts with a dot
('..', hidden files), holds control characters, or does not end in an extension harmonycloak
reads: the page sends each file under its own base name, so only a hand-made request carries
such a name, and saying no is clearer than guessing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from pathlib import Path

from harmonycloak.errors import HarmonyCloakError
from harmonycloak.io.formats import SUPPORTED_EXTENSIONS, supported_formats_text
from harmonycloak.io.midi import MIDI_SUFFIXES

READABLE_SUFFIXES: tuple[str, ...] = (*SUPPORTED_EXTENSIONS, *MIDI_SUFFIXES)
MAX_NAME_BYTES = 200  # UTF-8 bytes; leaves room for ".protected" under the usual 255-byte limit


class UploadRefusedError(HarmonyCloakError):
    """An upload the app does not take: a bad name, an unreadable kind of file, a bad setting."""


class UploadTooLargeError(HarmonyCloakError):
    """An upload over the size limit (`harmonycloak serve --max-upload-mb`)."""


class QueueFullError(HarmonyCloakError):
    """The queue holds as many waiting files as it may (`harmonycloak serve --max-queue`)."""


def upload_name(raw: str | None) -> str:
    """The name an uploaded file is stored under inside its job's folder: `raw` itself, NFC-normalised.

    Raises:
        UploadRefusedError: `raw` is empty, holds a folder, starts with a dot, holds control
            characters, is too long, or is not a kind of file harmonycloak reads.
    """
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        raise UploadRefusedError("the file has no name")
    if "/" in name or "\\" in name:
        raise UploadRefusedError(f"'{name}': a file name may not contain a folder ('/' or '\\')")
    if name.startswith("."):
        raise UploadRefusedError(f"'{name}': a file name may not start with a dot")
    if any(unicodedata.category(character).startswith("C") for character in name):
        raise UploadRefusedError(f"{name!r}: a file name may not contain control characters")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise UploadRefusedError(f"'{name[:40]}…': the file name is longer than {MAX_NAME_BYTES} bytes")
    if Path(name).suffix.lower() not in READABLE_SUFFIXES:
        raise UploadRefusedError(f"'{name}': harmonycloak reads {supported_formats_text()} and MIDI (.mid/.midi)")
    return name


def path_inside(folder: Path, name: str) -> Path:
    """``folder / name``, checked to lie directly inside `folder` once resolved (a second guard
    behind `upload_name`).

    Raises:
        UploadRefusedError: the path would leave `folder`.
    """
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise UploadRefusedError(f"'{name}': the name points outside the app's folder")
    return path


Receive = Callable[[], Awaitable[dict]]


def limited_receive(receive: Receive, max_bytes: int, limit_mb: float) -> Receive:
    """An ASGI `receive` that raises `UploadTooLargeError` once the request body passes `max_bytes`,
    so that an oversized upload is refused while it streams in, whatever its Content-Length says
    (`limit_mb`: the limit as the user set it, for the message)."""
    received_bytes = 0

    async def counted() -> dict:
        nonlocal received_bytes
        message = await receive()
        if message["type"] == "http.request":
            received_bytes += len(message.get("body", b""))
            if received_bytes > max_bytes:
                raise UploadTooLargeError(upload_too_large_message(limit_mb))
        return message

    return counted


def upload_too_large_message(limit_mb: float) -> str:
    return f"the upload is larger than this app's limit of {limit_mb:g} MB (harmonycloak serve --max-upload-mb)"
