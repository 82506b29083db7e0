"""Tags and cover art survive write_audio(..., tags_from=source): exactly within one tag
system, the common fields and the front cover across systems. Tags are made and read back
with mutagen (its "easy" key mappings where it has them), not with harmonycloak.io.tags."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile
from mutagen import id3
from mutagen.flac import Picture
from mutagen.mp4 import MP4Cover, MP4FreeForm

from audio_helpers import music_like, tiny_png
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.music import Audio

ELF_LAND = Path(__file__).resolve().parents[2] / "examples" / "elf-land.ogg"

FRONT = tiny_png(rgb=(200, 30, 90))
BACK = tiny_png(rgb=(10, 220, 40))
COMMON = {
    "title": "Lied für Tests",
    "artist": "Ada Example",
    "album": "Synthetic Sessions",
    "date": "2024",
    "genre": "Folk",
    "tracknumber": "3/12",
}
COMMENT = "made by the test suite"
ITUNSMPB_KEY = "----:com.apple.iTunes:iTunSMPB"


def _picture(data: bytes, picture_type: int, description: str) -> Picture:
    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = picture_type, "image/png", description, data
    picture.width = picture.height = 2
    picture.depth = 24
    return picture


def _tag_id3(tags: id3.ID3) -> None:
    for frame_id, key in [("TIT2", "title"), ("TPE1", "artist"), ("TALB", "album"), ("TDRC", "date"),
                          ("TCON", "genre"), ("TRCK", "tracknumber")]:
        tags.add(getattr(id3, frame_id)(encoding=3, text=[COMMON[key]]))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=[COMMENT]))
    tags.add(id3.TXXX(encoding=3, desc="MOOD", text=["calm"]))  # a field only ID3 copies keep
    tags.add(id3.APIC(encoding=3, mime="image/png", type=3, desc="front", data=FRONT))
    tags.add(id3.APIC(encoding=3, mime="image/png", type=4, desc="back", data=BACK))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="iTunSMPB", text=[" 00000000 00000840 00000000"]))


def _tag_vorbis(file: mutagen.FileType) -> None:
    if file.tags is None:
        file.add_tags()
    for key, value in COMMON.items():
        file.tags[key.upper()] = [value]
    file.tags["COMMENT"] = [COMMENT]
    file.tags["MOOD"] = ["calm"]
    pictures = [_picture(FRONT, 3, "front"), _picture(BACK, 4, "back")]
    if hasattr(file, "add_picture"):
        for picture in pictures:
            file.add_picture(picture)
    else:
        file.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(p.write()).decode() for p in pictures]


def _tag_mp4(file: mutagen.FileType) -> None:
    if file.tags is None:
        file.add_tags()
    for key, atom in [("title", "\xa9nam"), ("artist", "\xa9ART"), ("album", "\xa9alb"), ("date", "\xa9day"),
                      ("genre", "\xa9gen")]:
        file.tags[atom] = [COMMON[key]]
    file.tags["trkn"] = [(3, 12)]
    file.tags["\xa9cmt"] = [COMMENT]
    file.tags["----:com.apple.iTunes:MOOD"] = [MP4FreeForm(b"calm")]
    file.tags["covr"] = [MP4Cover(FRONT, imageformat=MP4Cover.FORMAT_PNG), MP4Cover(BACK, imageformat=MP4Cover.FORMAT_PNG)]


def make_tagged(tmp_path: Path, ext: str, rate: int = 44100, num_channels: int = 2) -> Path:
    """A short file of this kind, tagged with COMMON, a comment, a MOOD field and two pictures."""
    path = write_audio(Audio(music_like(num_channels, rate, duration_s=0.3), rate), tmp_path / f"tagged.{ext}")
    file = mutagen.File(path)
    if ext in ("mp3", "wav"):
        if file.tags is None:
            file.add_tags()
        _tag_id3(file.tags)
    elif ext == "m4a":
        _tag_mp4(file)
    else:
        _tag_vorbis(file)
    file.save()
    return path


def _id3_frames(tags: id3.ID3) -> dict[str, str]:
    return {key: repr(frame) for key, frame in tags.items() if not (key.startswith("COMM") and "iTunSMPB" in key)}


def _vorbis_comments(file: mutagen.FileType) -> list[tuple[str, str]]:
    return sorted((k.upper(), v) for k, v in file.tags if k.upper() != "METADATA_BLOCK_PICTURE")


def _pictures(path: Path) -> list[tuple[int, str, str, bytes]]:
    """(type, mime, description, data) of every embedded picture, in file order."""
    file = mutagen.File(path)
    if hasattr(file, "pictures"):
        found = file.pictures
    elif file.tags is not None and "METADATA_BLOCK_PICTURE" in file.tags:
        found = [Picture(base64.b64decode(v)) for v in file.tags["METADATA_BLOCK_PICTURE"]]
    elif file.tags is not None and "covr" in getattr(file.tags, "keys", lambda: [])():
        return [(3, "image/png" if c.imageformat == MP4Cover.FORMAT_PNG else "image/jpeg", "", bytes(c))
                for c in file.tags["covr"]]
    else:
        return [(p.type, p.mime, p.desc, p.data) for p in (file.tags.getall("APIC") if file.tags else [])]
    return [(p.type, p.mime, p.desc, p.data) for p in found]


@pytest.mark.parametrize("ext", ["mp3", "wav", "flac", "ogg", "opus", "m4a"])
def test_same_format_copies_every_tag_and_picture(tmp_path, ext):
    source = make_tagged(tmp_path, ext, rate=48000 if ext == "opus" else 44100)
    audio = read_audio(source)
    half = Audio(audio.samples[:, :4000], audio.sample_rate_hz, audio.format)  # a length of its own
    out = write_audio(half, tmp_path / f"out.{ext}", tags_from=source)
    src, dst = mutagen.File(source), mutagen.File(out)
    if ext in ("mp3", "wav"):
        assert _id3_frames(dst.tags) == _id3_frames(src.tags)
        assert not dst.tags.getall("COMM:iTunSMPB:eng")  # encoder-specific: never copied
    elif ext == "m4a":
        expected = {k: v for k, v in src.tags.items() if k != ITUNSMPB_KEY}
        assert {k: v for k, v in dst.tags.items() if k != ITUNSMPB_KEY} == expected
        # the target keeps its own gapless tag, with its own length, not the source's
        assert int(bytes(src.tags[ITUNSMPB_KEY][0]).split()[3], 16) == int(0.3 * 44100)
        assert int(bytes(dst.tags[ITUNSMPB_KEY][0]).split()[3], 16) == 4000
    else:
        assert _vorbis_comments(dst) == _vorbis_comments(src)
    assert _pictures(out) == _pictures(source)
    assert len(_pictures(out)) == 2


def _common_fields(path: Path) -> dict[str, str]:
    """title..tracknumber and comment, read with mutagen's own per-system key mappings."""
    file = mutagen.File(path, easy=True)
    if file is not None and file.tags is not None and not path.suffix == ".wav":
        fields = {key: str(file.tags[key][0]) for key in COMMON if key in file.tags}
    else:  # WAV: mutagen has no easy mapping for the id3 chunk; use EasyID3's frame names
        tags = mutagen.File(path).tags
        fields = {key: str(tags[_EASY_ID3_FRAME[key]].text[0])
                  for key in COMMON if tags is not None and _EASY_ID3_FRAME[key] in tags}
    raw = mutagen.File(path)
    comment = None
    if path.suffix in (".mp3", ".wav"):
        comms = [f for f in raw.tags.getall("COMM") if f.desc == ""] if raw.tags else []
        comment = comms[0].text[0] if comms else None
    elif path.suffix == ".m4a":
        comment = raw.tags.get("\xa9cmt", [None])[0]
    else:
        comment = (raw.tags.get("COMMENT") or raw.tags.get("DESCRIPTION") or [None])[0]
    if comment is not None:
        fields["comment"] = comment
    return fields


_EASY_ID3_FRAME = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC", "genre": "TCON",
                   "tracknumber": "TRCK"}


_TAG_SYSTEM = {"mp3": "id3", "wav": "id3", "flac": "vorbis", "ogg": "vorbis", "opus": "vorbis", "m4a": "mp4"}


@pytest.mark.parametrize("source_ext, target_ext", [
    (source, target) for source in ("mp3", "flac", "m4a") for target in _TAG_SYSTEM
    if _TAG_SYSTEM[source] != _TAG_SYSTEM[target]])
def test_across_tag_systems_common_fields_and_front_cover_are_kept(tmp_path, source_ext, target_ext):
    source = make_tagged(tmp_path, source_ext)
    out = write_audio(read_audio(source), tmp_path / f"out.{target_ext}", tags_from=source)
    assert _common_fields(out) == {**COMMON, "comment": COMMENT}
    pictures = _pictures(out)
    assert len(pictures) == 1
    assert (pictures[0][0], pictures[0][3]) == (3, FRONT)  # the front cover, byte for byte


def test_real_music_tags_go_to_other_formats(tmp_path):
    """elf-land.ogg's Vorbis comments (with a front cover added) reach MP3, M4A and FLAC."""
    source = tmp_path / "elf-land.ogg"
    shutil.copy(ELF_LAND, source)
    file = mutagen.File(source)
    file.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture(FRONT, 3, "cover").write()).decode()]
    file.save()
    original = mutagen.File(source).tags
    expected = {key: original[key.upper()][0] for key in ("title", "artist", "album", "date", "genre", "tracknumber")}
    expected["comment"] = original["DESCRIPTION"][0]  # the file has DESCRIPTION, no COMMENT

    audio = read_audio(source)
    short = Audio(audio.samples[:, :44100], audio.sample_rate_hz, audio.format)  # 1 s is enough
    for ext in ("mp3", "m4a", "flac"):
        out = write_audio(short, tmp_path / f"elf.{ext}", tags_from=source)
        assert _common_fields(out) == expected, ext
        assert [(p[0], p[3]) for p in _pictures(out)] == [(3, FRONT)]


def test_wav_riff_info_is_copied_and_read_as_common_fields(tmp_path):
    """libsndfile writes title/artist into a LIST/INFO chunk: WAV to WAV keeps it; a WAV with
    no ID3 chunk lends its INFO fields to other formats."""
    source = tmp_path / "info.wav"
    with soundfile.SoundFile(str(source), "w", 44100, 1, subtype="PCM_16") as file:
        file.title, file.artist = "Info Title", "Info Artist"
        file.write(np.zeros(4410, np.float32))
    assert mutagen.File(source).tags is None  # INFO only, no ID3 chunk
    audio = read_audio(source)

    wav_out = write_audio(audio, tmp_path / "out.wav", tags_from=source)
    with soundfile.SoundFile(str(wav_out)) as file:
        assert (file.title, file.artist) == ("Info Title", "Info Artist")
    np.testing.assert_array_equal(read_audio(wav_out).samples, audio.samples)  # audio untouched

    mp3_out = write_audio(audio, tmp_path / "out.mp3", tags_from=source)
    assert _common_fields(mp3_out) == {"title": "Info Title", "artist": "Info Artist"}


def test_without_tags_from_no_tags_are_copied(tmp_path):
    source = make_tagged(tmp_path, "flac")
    out = write_audio(read_audio(source), tmp_path / "out.flac")
    file = mutagen.File(out)
    assert not file.pictures
    assert "TITLE" not in (file.tags or {})


@pytest.mark.parametrize("ext", ["mp3", "ogg", "m4a"])
def test_same_format_source_without_tags_gives_a_target_without_tags(tmp_path, ext):
    """The encoders add their own name (ID3 TSSE, Vorbis ENCODER, MP4 ©too); copying from an
    untagged file of the same system leaves exactly its (absent) tags."""
    rate = 48000
    audio = Audio(music_like(2, rate, duration_s=0.2), rate)
    source = write_audio(audio, tmp_path / f"plain.{ext}")
    file = mutagen.File(source)
    file.delete()
    out = write_audio(audio, tmp_path / f"out.{ext}", tags_from=source)
    remaining = {k: v for k, v in (mutagen.File(out).tags or {}).items() if k != ITUNSMPB_KEY}
    assert not remaining
