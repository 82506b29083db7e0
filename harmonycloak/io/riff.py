"""The top-level chunks of a RIFF/WAVE file, read by hand.

Written by hand because neither libsndfile nor mutagen tells what the header of a damaged
file promises: libsndfile quietly shortens a truncated ``data`` chunk to what is there, and
mutagen handles only the ``id3`` chunk. This reads chunk headers only, never the audio.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_HEADER_BYTES = 8  # 4-byte id + little-endian uint32 size
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # sizes streaming writers leave for "until the end"


@dataclass(frozen=True)
class RiffChunk:
    """One chunk: its 4-byte id, where its data starts, and the size its header declares."""

    chunk_id: bytes
    data_offset: int
    declared_size: int


def wave_chunks(path: str | Path) -> list[RiffChunk] | None:
    """The chunks of a RIFF/WAVE file in file order; None if it is not a RIFF/WAVE file."""
    with open(path, "rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        file_size = file.seek(0, 2)
        chunks = []
        offset = 12
        while offset + _HEADER_BYTES <= file_size:
            file.seek(offset)
            chunk_id, size = struct.unpack("<4sI", file.read(_HEADER_BYTES))
            chunks.append(RiffChunk(chunk_id, offset + _HEADER_BYTES, size))
            offset += _HEADER_BYTES + size + (size & 1)  # chunks are padded to even length
    return chunks


def promised_and_present_frames(path: str | Path) -> tuple[int, int] | None:
    """(frames the ``data`` header promises, whole frames actually in the file), or None.

    None when the file is not RIFF/WAVE, has no ``fmt``/``data`` chunk, or its data size is
    left open (0 or 0xFFFFFFFF, as written by streaming recorders).
    """
    chunks = wave_chunks(path)
    if chunks is None:
        return None
    by_id = {chunk.chunk_id: chunk for chunk in chunks}
    fmt, data = by_id.get(b"fmt "), by_id.get(b"data")
    if fmt is None or data is None or data.declared_size in _UNKNOWN_SIZES:
        return None
    with open(path, "rb") as file:
        file.seek(fmt.data_offset + 12)  # WAVEFORMAT: tag, channels, rate, byte rate, align
        (block_align,) = struct.unpack("<H", file.read(2) or b"\0\0")
        file_size = file.seek(0, 2)
    if block_align == 0:
        return None
    present_bytes = max(0, min(data.declared_size, file_size - data.data_offset))
    return data.declared_size // block_align, present_bytes // block_align


def read_chunks(path: str | Path, chunk_id: bytes) -> list[bytes]:
    """The data of every top-level chunk with this id, in file order."""
    found = []
    with open(path, "rb") as file:
        for chunk in wave_chunks(path) or []:
            if chunk.chunk_id == chunk_id:
                file.seek(chunk.data_offset)
                found.append(file.read(chunk.declared_size))
    return found


def append_chunk(path: str | Path, chunk_id: bytes, data: bytes) -> None:
    """Append a chunk at the end of a RIFF/WAVE file and update the RIFF size."""
    with open(path, "r+b") as file:
        end = file.seek(0, 2)
        if end & 1:  # the previous chunk lacks its pad byte
            file.write(b"\0")
            end += 1
        file.write(struct.pack("<4sI", chunk_id, len(data)) + data + (b"\0" if len(data) & 1 else b""))
        riff_size = file.tell() - _HEADER_BYTES
        file.seek(4)
        file.write(struct.pack("<I", riff_size))


def parse_info_list(data: bytes) -> dict[bytes, str]:
    """The text fields of a ``LIST`` chunk of type ``INFO`` (e.g. b"INAM" → title)."""
    if data[:4] != b"INFO":
        return {}
    fields: dict[bytes, str] = {}
    offset = 4
    while offset + _HEADER_BYTES <= len(data):
        field_id, size = struct.unpack("<4sI", data[offset:offset + _HEADER_BYTES])
        raw = data[offset + _HEADER_BYTES:offset + _HEADER_BYTES + size]
        fields[field_id] = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
        offset += _HEADER_BYTES + size + (size & 1)
    return fields
