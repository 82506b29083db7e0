"""Deterministic Ogg files: fixed stream serial numbers.

Ogg encoders pick each logical stream's serial number at random (libsndfile seeds it from the
clock), so two encodings of the same samples differ in those four bytes of every page and in
every page's checksum. The promise "same seed, same output, byte for byte" needs them fixed:
streams are renumbered 1, 2, ... in order of appearance, and mutagen's `OggPage` rewrites each
page with its checksum recomputed. Serial numbers only tell streams apart; players ignore
their values.
"""

from __future__ import annotations

from pathlib import Path

from mutagen.ogg import OggPage


def renumber_ogg_streams(path: Path) -> None:
    """Rewrite `path` in place with stream serial numbers 1, 2, ... (checksums recomputed)."""
    pages, serials = [], {}
    with open(path, "rb") as file:
        while True:
            try:
                page = OggPage(file)
            except EOFError:
                break
            page.serial = serials.setdefault(page.serial, len(serials) + 1)
            pages.append(page.write())
    with open(path, "wb") as file:
        file.write(b"".join(pages))
