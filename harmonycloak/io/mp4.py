"""The top-level boxes of an MPEG-4 (M4A) file, read by hand.

An MPEG-4 file is a sequence of boxes, each starting with its size in bytes (ISO/IEC 14496-12
§4.2: a 32-bit size and a 4-character type; size 1 means a 64-bit size follows, size 0 means
"to the end of the file"). The sizes are exact, so a file whose last box ends beyond the end
of the file was cut short, even where ffmpeg still opens it (a cut inside ``moov`` leaves it
without an audio stream; a cut inside ``mdat`` decodes as a shorter piece). This reads box
headers only, never the audio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_HEADER_BYTES = 8


@dataclass(frozen=True)
class CutBox:
    """A top-level box that the file ends inside of."""

    where: str  # "its 'mdat' box", "an MPEG-4 box" (a type that is not text), "an MPEG-4 box header"
    present_bytes: int
    stated_bytes: int


def looks_like_mp4(path: str | Path) -> bool:
    """Whether the file starts with an MPEG-4 ``ftyp`` box."""
    with open(path, "rb") as file:
        return file.read(8)[4:8] == b"ftyp"


def cut_box(path: str | Path) -> CutBox | None:
    """The top-level box that the file ends inside of, or None when every box is whole."""
    with open(path, "rb") as file:
        file_size = file.seek(0, 2)
        offset = 0
        while offset < file_size:
            file.seek(offset)
            header = file.read(_HEADER_BYTES)
            if len(header) < _HEADER_BYTES:
                return CutBox("an MPEG-4 box header", len(header), _HEADER_BYTES)
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                large = file.read(8)
                if len(large) < 8:
                    return CutBox("an MPEG-4 box header", _HEADER_BYTES + len(large), 2 * _HEADER_BYTES)
                (size,) = struct.unpack(">Q", large)
            elif size == 0:
                return None  # the last box runs to the end of the file, whatever its length
            if size < _HEADER_BYTES:
                return None  # not a box header: damage, left to the decoder to find
            if offset + size > file_size:
                name = kind.decode("ascii") if all(0x20 <= byte < 0x7F for byte in kind) else None
                return CutBox(f"its MPEG-4 '{name}' box" if name else "an MPEG-4 box", file_size - offset, size)
            offset += size
    return None
