"""Copy tags and cover art from one audio file to another (mutagen).

Three tag systems cover the supported formats:
  - ID3v2 ("id3"): MP3, and WAV (an ``id3`` chunk); cover art in APIC frames.
  - Vorbis comments ("vorbis"): FLAC (with PICTURE blocks), Ogg Vorbis and Ogg Opus (cover
    art as base64 METADATA_BLOCK_PICTURE comments).
  - MP4 atoms ("mp4"): M4A; cover art in ``covr``.
Within one system every tag is copied as it is (FLAC and Ogg convert between picture blocks
and METADATA_BLOCK_PICTURE). Across systems the common fields (title, artist, album, date,
genre, track number, comment) and the front cover are carried over, best effort. WAV's
RIFF ``LIST/INFO`` chunk is copied as it is between WAV files and read as a source of the
common fields when a WAV has no ID3 chunk. Raw ADTS .aac files hold no tags.

Gapless-playback data (iTunes' ``iTunSMPB``) describes the encoding, not the music: it is
never copied, so that the target keeps the values its own encoder wrote.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mutagen
from mutagen import id3
from mutagen.flac import FLAC, Picture
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from harmonycloak.io import riff

ITUNSMPB_MP4_KEY = "----:com.apple.iTunes:iTunSMPB"
_FRONT_COVER = 3  # picture type "Cover (front)" in ID3 APIC and FLAC PICTURE
_PICTURE_COMMENT = "METADATA_BLOCK_PICTURE"

# Common field name → (ID3 frame, Vorbis comment, MP4 atom, RIFF INFO id).
_COMMON_FIELDS: dict[str, tuple[str, str, str, bytes]] = {
    "title": ("TIT2", "TITLE", "\xa9nam", b"INAM"),
    "artist": ("TPE1", "ARTIST", "\xa9ART", b"IART"),
    "album": ("TALB", "ALBUM", "\xa9alb", b"IPRD"),
    "date": ("TDRC", "DATE", "\xa9day", b"ICRD"),
    "genre": ("TCON", "GENRE", "\xa9gen", b"IGNR"),
    "tracknumber": ("TRCK", "TRACKNUMBER", "trkn", b"ITRK"),
    "comment": ("COMM", "COMMENT", "\xa9cmt", b"ICMT"),
}


@dataclass
class Cover:
    """An embedded picture: its bytes, MIME type ("image/jpeg") and description."""

    data: bytes
    mime: str
    description: str = ""


@dataclass
class CommonTags:
    """The fields every tag system has: text by common field name, and the front cover."""

    text: dict[str, str] = field(default_factory=dict)
    cover: Cover | None = None


def copy_tags(source: str | Path, target: str | Path) -> None:
    """Copy tags and cover art from ``source`` into the already written ``target`` file.

    Same tag system: the target's tags become exactly the source's (none if it has none;
    gapless data excepted). Different systems: the common fields and the front cover are
    added to the target's tags.
    """
    source_file = mutagen.File(source)
    target_file = mutagen.File(target)
    source_system, target_system = _tag_system(source_file), _tag_system(target_file)
    if isinstance(source_file, WAVE) and source_file.tags is None and not isinstance(target_file, WAVE):
        source_system = "riff-info"  # a WAV without ID3 chunk: its LIST/INFO fields are its tags
    if target_system is None:
        return  # raw ADTS: no tags
    if source_system == target_system:
        _COPY_EXACT[target_system](source_file, target_file)
    else:
        common = _read_common(source_file, source)
        if common.text or common.cover is not None:
            _WRITE_COMMON[target_system](target_file, common)
    if isinstance(target_file, WAVE):
        for info in riff.read_chunks(source, b"LIST"):
            if info[:4] == b"INFO":
                riff.append_chunk(target, b"LIST", info)


def read_common_tags(path: str | Path) -> CommonTags:
    """The common fields and front cover of a file (empty if it has none)."""
    return _read_common(mutagen.File(path), path)


def _tag_system(file: mutagen.FileType | None) -> str | None:
    if isinstance(file, (MP3, WAVE)):
        return "id3"
    if isinstance(file, (FLAC, OggVorbis, OggOpus)):
        return "vorbis"
    if isinstance(file, MP4):
        return "mp4"
    return None


# --- same system: copy everything -----------------------------------------------------------

def _copy_id3(source: mutagen.FileType, target: mutagen.FileType) -> None:
    if target.tags is None:
        target.add_tags()
    target.tags.clear()
    for frame in source.tags.values() if source.tags is not None else []:
        if not (isinstance(frame, id3.COMM) and frame.desc == "iTunSMPB"):
            target.tags.add(frame)
    target.save(v2_version=3 if source.tags is not None and source.tags.version[1] == 3 else 4)


def _copy_vorbis(source: mutagen.FileType, target: mutagen.FileType) -> None:
    comments = [(k, v) for k, v in source.tags or [] if k.upper() != _PICTURE_COMMENT]
    _replace_vorbis_tags(target, comments, _vorbis_pictures(source))


def _copy_mp4(source: MP4, target: MP4) -> None:
    own_gapless = target.tags.get(ITUNSMPB_MP4_KEY) if target.tags is not None else None
    if target.tags is None:
        target.add_tags()
    target.tags.clear()
    for key, value in (source.tags or {}).items():
        if key != ITUNSMPB_MP4_KEY:
            target.tags[key] = value
    if own_gapless is not None:
        target.tags[ITUNSMPB_MP4_KEY] = own_gapless
    target.save()


_COPY_EXACT: dict[str, Callable[[mutagen.FileType, mutagen.FileType], None]] = {
    "id3": _copy_id3, "vorbis": _copy_vorbis, "mp4": _copy_mp4,
}


# --- across systems: the common fields ------------------------------------------------------

def _read_common(file: mutagen.FileType | None, path: str | Path) -> CommonTags:
    system = _tag_system(file)
    if system is not None and file.tags is not None:
        return _READ_COMMON[system](file)
    if isinstance(file, WAVE):
        return _read_common_riff_info(path)
    return CommonTags()


def _read_common_id3(file: mutagen.FileType) -> CommonTags:
    tags, common = file.tags, CommonTags()
    for name, (frame_id, *_rest) in _COMMON_FIELDS.items():
        if frame_id == "COMM":
            frames = [f for f in tags.getall("COMM") if not f.desc.startswith("iTun")]
        else:
            frames = tags.getall(frame_id)
        if frames and frames[0].text:
            value = frames[0].genres[0] if frame_id == "TCON" and frames[0].genres else frames[0].text[0]
            common.text[name] = str(value)
    pictures = sorted(tags.getall("APIC"), key=lambda p: p.type != _FRONT_COVER)
    if pictures:
        common.cover = Cover(pictures[0].data, pictures[0].mime, pictures[0].desc)
    return common


def _read_common_vorbis(file: mutagen.FileType) -> CommonTags:
    common = CommonTags()
    for name, (_i, key, *_rest) in _COMMON_FIELDS.items():
        values = file.tags.get(key) or (file.tags.get("DESCRIPTION") if name == "comment" else None)
        if values:
            common.text[name] = values[0]
    pictures = sorted(_vorbis_pictures(file), key=lambda p: p.type != _FRONT_COVER)
    if pictures:
        common.cover = Cover(pictures[0].data, pictures[0].mime, pictures[0].desc)
    return common


def _read_common_mp4(file: MP4) -> CommonTags:
    common = CommonTags()
    for name, (_i, _v, atom, _r) in _COMMON_FIELDS.items():
        values = file.tags.get(atom)
        if not values:
            continue
        if atom == "trkn":
            number, total = values[0]
            common.text[name] = f"{number}/{total}" if total else str(number)
        else:
            common.text[name] = str(values[0])
    covers = file.tags.get("covr")
    if covers:
        mime = "image/png" if covers[0].imageformat == MP4Cover.FORMAT_PNG else "image/jpeg"
        common.cover = Cover(bytes(covers[0]), mime)
    return common


def _read_common_riff_info(path: str | Path) -> CommonTags:
    common = CommonTags()
    for info in riff.read_chunks(path, b"LIST"):
        fields = riff.parse_info_list(info)
        for name, (*_rest, info_id) in _COMMON_FIELDS.items():
            if fields.get(info_id):
                common.text.setdefault(name, fields[info_id])
    return common


_READ_COMMON: dict[str, Callable[[mutagen.FileType], CommonTags]] = {
    "id3": _read_common_id3, "vorbis": _read_common_vorbis, "mp4": _read_common_mp4,
}


def _write_common_id3(file: mutagen.FileType, common: CommonTags) -> None:
    if file.tags is None:
        file.add_tags()
    for name, value in common.text.items():
        frame_id = _COMMON_FIELDS[name][0]
        file.tags.delall(frame_id)
        if frame_id == "COMM":
            file.tags.add(id3.COMM(encoding=id3.Encoding.UTF8, lang="eng", desc="", text=[value]))
        else:
            file.tags.add(getattr(id3, frame_id)(encoding=id3.Encoding.UTF8, text=[value]))
    if common.cover is not None:
        file.tags.delall("APIC")
        file.tags.add(id3.APIC(encoding=id3.Encoding.UTF8, mime=common.cover.mime, type=_FRONT_COVER,
                               desc=common.cover.description, data=common.cover.data))
    file.save()


def _write_common_vorbis(file: mutagen.FileType, common: CommonTags) -> None:
    comments = [(_COMMON_FIELDS[name][1], value) for name, value in common.text.items()]
    pictures = []
    if common.cover is not None:
        picture = Picture()
        picture.type, picture.mime = _FRONT_COVER, common.cover.mime
        picture.desc, picture.data = common.cover.description, common.cover.data
        pictures.append(picture)
    _replace_vorbis_tags(file, comments, pictures)


def _write_common_mp4(file: MP4, common: CommonTags) -> None:
    if file.tags is None:
        file.add_tags()
    for name, value in common.text.items():
        atom = _COMMON_FIELDS[name][2]
        if atom == "trkn":
            number, _, total = value.partition("/")
            if number.strip().isdigit():
                total_n = int(total) if total.strip().isdigit() else 0
                file.tags[atom] = [(int(number), total_n)]
        else:
            file.tags[atom] = [value]
    if common.cover is not None and common.cover.mime in ("image/jpeg", "image/jpg", "image/png"):
        image_format = MP4Cover.FORMAT_PNG if common.cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
        file.tags["covr"] = [MP4Cover(common.cover.data, imageformat=image_format)]
    file.save()


_WRITE_COMMON: dict[str, Callable[[mutagen.FileType, CommonTags], None]] = {
    "id3": _write_common_id3, "vorbis": _write_common_vorbis, "mp4": _write_common_mp4,
}


# --- Vorbis comments: FLAC keeps pictures in blocks, Ogg in a base64 comment ------------------

def _vorbis_pictures(file: mutagen.FileType) -> list[Picture]:
    if isinstance(file, FLAC):
        return list(file.pictures)
    pictures = []
    for value in file.tags.get(_PICTURE_COMMENT, []) if file.tags is not None else []:
        try:
            pictures.append(Picture(base64.b64decode(value)))
        except (ValueError, mutagen.MutagenError):
            continue  # a damaged picture comment is skipped, not fatal
    return pictures


def _replace_vorbis_tags(file: mutagen.FileType, comments: list[tuple[str, str]],
                         pictures: list[Picture]) -> None:
    """Set the file's comments to exactly ``comments`` and its pictures to ``pictures``."""
    if file.tags is None:
        file.add_tags()
    file.tags.clear()
    file.tags.extend(comments)
    if isinstance(file, FLAC):
        file.clear_pictures()
        for picture in pictures:
            file.add_picture(picture)
    else:
        for picture in pictures:
            file.tags.append((_PICTURE_COMMENT, base64.b64encode(picture.write()).decode("ascii")))
    file.save()
