"""Bad and borderline inputs through the command line, as one table.

Each row names a case, makes its input in an empty folder, runs `harmonycloak protect`,
`verify` or `train` there, and states the exit code, a fragment of what the musician is told,
and the files the command may write. Every row also checks that no input changed (sha256)
and that nothing else appeared: no output of a refused file, no temporary file. Rows that
protect check what they wrote: no NaN, no clipping introduced, float samples beyond ±1 kept,
the same length, sample rate, channels and bit depth (or bitrate) as the input.

Exit codes: 0 done (or skipped because the output exists), 1 a file refused with a one-line
error, 2 a command line argparse rejects or a setting out of range (a one-line error too).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mido
import mutagen
import numpy as np
import pytest
import soundfile
import symusic

from harmonycloak.cli import main
from input_makers import (decode_with_ffmpeg, encode_with_ffmpeg, file_hashes, lame_mp3, midi_file,
                          mp3_frame_offsets, mp3_frames, tone, write_soundfile)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
QUICK = ("--preset", "tiny", "--rounds", "1", "--no-report")  # seconds per protected file
FAST_VERIFY = ("--no-protection-check", "--no-visqol")
RATE = 22_050
FRAMES = RATE // 2  # half a second: long enough for several noise windows and a segment
SONG_NOTES = [(60, 90, 0, 480), (64, 80, 480, 960), (67, 100, 960, 1920), (72, 70, 1920, 2400)]

Maker = Callable[[Path, contextlib.ExitStack], None]


@dataclass(frozen=True)
class Row:
    """One case of the table.

    Attributes:
        id: what the case is.
        make: writes the inputs into the (current, empty) folder.
        argv: the command line, with names relative to that folder (QUICK goes after `protect`).
        exit_code: 0, 1 or 2 (see the module docstring).
        says: a fragment (any case) of what the command prints.
        writes: the only files that may appear, relative to the folder.
        sane: (input, output) pairs whose audio or MIDI output is checked.
        untouched: the output is the input's exact copy (a silent file).
    """

    id: str
    make: Maker
    argv: tuple[str, ...]
    exit_code: int
    says: str
    writes: tuple[str, ...] = ()
    sane: tuple[tuple[str, str], ...] = ()
    untouched: bool = False


# --- makers ------------------------------------------------------------------------------------

def files(*makers: Maker) -> Maker:
    def make(folder: Path, stack: contextlib.ExitStack) -> None:
        for maker in makers:
            maker(folder, stack)
    return make


def raw(name: str, data: bytes) -> Maker:
    return lambda folder, stack: (folder / name).write_bytes(data)


def text(name: str) -> Maker:
    return raw(name, b"These are my lyrics, not a recording.\n" * 40)


def sound(name: str, samples: np.ndarray | None = None, rate: int = RATE, subtype: str = "PCM_16") -> Maker:
    """A WAV or FLAC (by extension) through libsndfile; a half-second tone unless ``samples``."""
    data = tone(FRAMES, rate) if samples is None else samples
    return lambda folder, stack: write_soundfile(folder / name, data, rate, subtype)


def ffmpeg(name: str, encoder: str, muxer: str | None = None, channels: int = 2, rate: int = 44_100,
           vbr_quality: int | None = None) -> Maker:
    return lambda folder, stack: encode_with_ffmpeg(folder / name, tone(rate, rate, channels), rate, encoder,
                                                    muxer=muxer, vbr_quality=vbr_quality)


def lame(name: str, *, vbr: bool = False, id3_title: str | None = "song", rate: int = 44_100,
         channels: int = 2, bitrate_kbps: int = 128) -> Maker:
    return lambda folder, stack: lame_mp3(folder / name, tone(rate, rate, channels), rate, vbr=vbr,
                                          id3_title=id3_title, bitrate_kbps=bitrate_kbps)


def cut(maker: Maker, name: str, keep: Callable[[bytes], int]) -> Maker:
    """``maker``'s file ``name`` cut to its first ``keep(data)`` bytes."""
    def make(folder: Path, stack: contextlib.ExitStack) -> None:
        maker(folder, stack)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[:keep(data)])
    return make


def half(data: bytes) -> int:
    return len(data) // 2


def edited(maker: Maker, name: str, edit: Callable[[bytearray], None]) -> Maker:
    def make(folder: Path, stack: contextlib.ExitStack) -> None:
        maker(folder, stack)
        data = bytearray((folder / name).read_bytes())
        edit(data)
        (folder / name).write_bytes(bytes(data))
    return make


def with_bad_sample(name: str, value: float) -> Maker:
    samples = tone(FRAMES, RATE)
    samples[0, 1234] = value
    return sound(name, samples, subtype="FLOAT")


def wav_claiming_two_hours(data: bytearray) -> None:
    """Set the data chunk's size (bytes 40-43 of a canonical 44-byte header) to two hours of
    16-bit mono at RATE; the RIFF size (bytes 4-7) to match."""
    data_bytes = 2 * 3600 * RATE * 2
    data[40:44] = data_bytes.to_bytes(4, "little")
    data[4:8] = (36 + data_bytes).to_bytes(4, "little")


def flac_claiming_two_hours(data: bytearray) -> None:
    """Set STREAMINFO's 36-bit total sample count (FLAC format: after "fLaC", a 4-byte block
    header and 13 bytes of sizes, rate, channels and bits, the low 4 bits of byte 21 and bytes
    22-25) to two hours at RATE."""
    total = 2 * 3600 * RATE
    data[21] = (data[21] & 0xF0) | (total >> 32)
    data[22:26] = (total & 0xFFFFFFFF).to_bytes(4, "big")


def junk_between_frames(data: bytearray) -> None:
    """Insert 300 bytes of junk (no frame sync in it) between two MP3 frames in the middle."""
    offsets = mp3_frame_offsets(bytes(data))
    middle = offsets[len(offsets) // 2]
    data[middle:middle] = bytes(range(1, 151)) * 2


def id3v1(data: bytearray) -> None:
    data += b"TAG" + b"song".ljust(30, b"\0") + b"\0" * 92 + b"\xff"  # 128 bytes, genre 255


def midi(name: str, voices=((0, SONG_NOTES),), **options) -> Maker:
    return lambda folder, stack: midi_file(folder / name, list(voices), **options)


def no_tracks(name: str) -> Maker:
    return lambda folder, stack: mido.MidiFile(type=1, ticks_per_beat=480).save(str(folder / name))


def smpte(data: bytearray) -> None:
    data[12:14] = bytes([0xE7, 0x28])  # division: -25 frames per second, 40 ticks per frame


def notes_100000() -> list[tuple[int, list[tuple[int, int, int, int]]]]:
    """Four voices of 25,000 sixteenth notes each (480 ticks a beat): 100,000 notes, 52 minutes at 120 bpm."""
    return [(channel, [(base + (5 * i + channel) % 12, 80, 120 * i, 120 * (i + 1)) for i in range(25_000)])
            for channel, base in enumerate((48, 55, 60, 67))]


def link(name: str, target: str) -> Maker:
    return lambda folder, stack: (folder / name).symlink_to(target)


def folder_of(name: str, *makers: Maker) -> Maker:
    def make(folder: Path, stack: contextlib.ExitStack) -> None:
        (folder / name).mkdir()
        for maker in makers:
            maker(folder / name, stack)
    return make


def copy_of(source: Path, name: str) -> Maker:
    return lambda folder, stack: shutil.copyfile(source, folder / name)


def read_only_folder(name: str) -> Maker:
    """A folder nothing can be written into: a read-only tmpfs when running as root (root
    ignores permissions) and the machine allows mounting, else permissions 0o555."""
    def make(folder: Path, stack: contextlib.ExitStack) -> None:
        path = folder / name
        path.mkdir()
        if os.geteuid() != 0:
            path.chmod(0o555)
            stack.callback(path.chmod, 0o755)
            return
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
                                 capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("running as root without permission to mount a read-only folder")
        stack.callback(subprocess.run, ["umount", str(path)], check=True)
    return make


# --- the table ---------------------------------------------------------------------------------

SONG = sound("song.wav")
SILENCE = np.zeros((2, FRAMES))
CHORALE = copy_of(EXAMPLES / "bwv1.6.mid", "bwv.mid")


def refused(id: str, make: Maker, argv: tuple[str, ...], says: str) -> Row:
    return Row(id, make, argv, 1, says)


def bad_setting(id: str, make: Maker, argv: tuple[str, ...], says: str) -> Row:
    return Row(id, make, argv, 2, says)


AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "oga", "opus", "mp3", "m4a", "mp4", "aac")

ROWS = [
    # Empty, one byte, text under every extension.
    refused("protect-empty-wav", raw("song.wav", b""), ("protect", "song.wav"), "empty"),
    refused("protect-empty-mid", raw("song.mid", b""), ("protect", "song.mid"), "is empty"),
    refused("protect-one-byte-flac", raw("song.flac", b"\x00"), ("protect", "song.flac"), "not an audio file"),
    refused("protect-one-byte-mid", raw("song.mid", b"M"), ("protect", "song.mid"), "not a MIDI file"),
    *[refused(f"protect-text-as-{ext}", text(f"notes.{ext}"), ("protect", f"notes.{ext}"), "not an audio file")
      for ext in AUDIO_EXTENSIONS],
    *[refused(f"protect-text-as-{ext}", text(f"notes.{ext}"), ("protect", f"notes.{ext}"), "not a MIDI file")
      for ext in ("mid", "midi")],
    refused("protect-folder-with-text-as-flac", folder_of("album", text("notes.flac")), ("protect", "album"),
            "not an audio file"),

    # Truncated in the header and in the data, per format.
    refused("protect-wav-cut-in-header", cut(SONG, "song.wav", lambda d: 30), ("protect", "song.wav"), "not an audio file"),
    refused("protect-wav-cut-in-data", cut(SONG, "song.wav", half), ("protect", "song.wav"), "truncated"),
    refused("protect-flac-cut-in-header", cut(sound("song.flac"), "song.flac", lambda d: 30), ("protect", "song.flac"),
            "not an audio file"),
    refused("protect-flac-cut-in-data", cut(sound("song.flac"), "song.flac", half), ("protect", "song.flac"), "truncated"),
    refused("protect-ogg-cut-in-header", cut(sound("song.ogg", subtype="VORBIS"), "song.ogg", lambda d: 30),
            ("protect", "song.ogg"), "truncated"),
    refused("protect-ogg-cut-in-data", cut(sound("song.ogg", subtype="VORBIS"), "song.ogg", half),
            ("protect", "song.ogg"), "truncated"),
    refused("protect-opus-cut-in-header", cut(ffmpeg("song.opus", "libopus", "ogg", rate=48_000), "song.opus",
                                              lambda d: 30), ("protect", "song.opus"), "truncated"),
    refused("protect-opus-cut-in-data", cut(ffmpeg("song.opus", "libopus", "ogg", rate=48_000), "song.opus", half),
            ("protect", "song.opus"), "truncated"),
    refused("protect-mp3-xing-cut-in-header", cut(ffmpeg("song.mp3", "libmp3lame"), "song.mp3", lambda d: 200),
            ("protect", "song.mp3"), "not an audio file"),
    refused("protect-mp3-xing-cut-in-data", cut(ffmpeg("song.mp3", "libmp3lame"), "song.mp3", half),
            ("protect", "song.mp3"), "truncated"),
    refused("protect-mp3-no-xing-cut-in-a-frame",
            cut(lame("song.mp3"), "song.mp3", lambda d: mp3_frame_offsets(d)[20] + 100), ("protect", "song.mp3"),
            "truncated"),
    refused("protect-m4a-cut-in-header", cut(ffmpeg("song.m4a", "aac", "ipod"), "song.m4a", lambda d: 200),
            ("protect", "song.m4a"), "truncated"),
    refused("protect-m4a-cut-in-data", cut(ffmpeg("song.m4a", "aac", "ipod"), "song.m4a", half),
            ("protect", "song.m4a"), "truncated"),
    refused("protect-aac-cut-in-header", cut(ffmpeg("song.aac", "aac", "adts"), "song.aac", lambda d: 5),
            ("protect", "song.aac"), "not an audio file"),
    refused("protect-aac-cut-in-data", cut(ffmpeg("song.aac", "aac", "adts"), "song.aac", half),
            ("protect", "song.aac"), "damaged"),
    refused("protect-mid-cut-in-header", cut(midi("song.mid"), "song.mid", lambda d: 10), ("protect", "song.mid"),
            "cut short"),
    refused("protect-mid-cut-in-data", cut(midi("song.mid"), "song.mid", half), ("protect", "song.mid"), "cut short"),
    refused("protect-wav-header-claims-two-hours", edited(SONG, "song.wav", wav_claiming_two_hours),
            ("protect", "song.wav"), f"header promises {2 * 3600 * RATE} frames"),
    refused("protect-flac-header-claims-two-hours", edited(sound("song.flac"), "song.flac", flac_claiming_two_hours),
            ("protect", "song.flac"), f"header promises {2 * 3600 * RATE} frames"),

    # Samples and layouts harmonycloak does not take.
    refused("protect-nan", with_bad_sample("song.wav", np.nan), ("protect", "song.wav"), "NaN"),
    refused("protect-inf", with_bad_sample("song.wav", np.inf), ("protect", "song.wav"), "infinite"),
    refused("protect-9-channels", sound("song.wav", tone(FRAMES, RATE, 9)), ("protect", "song.wav"), "9 channels"),
    refused("protect-4-khz", sound("song.wav", rate=4_000), ("protect", "song.wav"), "4000 Hz"),
    refused("protect-384-khz", sound("song.wav", tone(3_840, 384_000), rate=384_000), ("protect", "song.wav"),
            "384000 Hz"),
    refused("protect-one-sample", sound("song.wav", np.full((1, 1), 0.25)), ("protect", "song.wav"),
            "shorter than one noise window"),
    refused("protect-aiff-named-wav",
            lambda folder, stack: soundfile.write(str(folder / "song.wav"), tone(FRAMES, RATE).T, RATE, format="AIFF"),
            ("protect", "song.wav"), "does not support"),
    refused("protect-unsupported-extension", sound("song.wav"), ("protect", "song.wav", "-o", "out.aiff"),
            "not a supported audio file type"),

    # Paths.
    refused("protect-missing-input", files(), ("protect", "gone.wav"), "does not exist"),
    refused("protect-dangling-symlink", link("song.wav", "gone.wav"), ("protect", "song.wav"), "does not exist"),
    refused("protect-empty-folder", folder_of("album"), ("protect", "album"), "nothing to protect"),
    refused("protect-output-is-input", SONG, ("protect", "song.wav", "-o", "song.wav"), "replace the original"),
    refused("protect-output-is-input-through-a-link", files(SONG, link("same.wav", "song.wav")),
            ("protect", "song.wav", "-o", "same.wav"), "replace the original"),
    refused("protect-missing-output-folder", SONG, ("protect", "song.wav", "-o", "no/such/out.wav"), "does not exist"),
    refused("protect-read-only-output-folder", files(SONG, read_only_folder("locked")),
            ("protect", "song.wav", "-o", "locked/out.wav"), "cannot write into this folder"),
    Row("protect-midi-existing-output-is-skipped", files(CHORALE, raw("out.mid", b"an earlier take")),
        ("protect", "bwv.mid", "-o", "out.mid"), 0, "exists already"),
    refused("protect-midi-output-as-wav", CHORALE, ("protect", "bwv.mid", "-o", "out.wav"), ".mid or .midi"),
    Row("protect-existing-output-is-skipped", files(SONG, raw("out.wav", b"an earlier take")),
        ("protect", "song.wav", "-o", "out.wav"), 0, "skipped"),
    Row("protect-leading-dash-without-separator", sound("-song.wav"), ("protect", "-song.wav"), 2,
        "arguments are required"),

    # Options out of range, NaN and infinity included.
    *[bad_setting(f"protect-preview-{value}", SONG, ("protect", "song.wav", f"--preview={value}"),
              "positive number of seconds") for value in ("nan", "inf", "0", "-1")],
    refused("protect-preview-shorter-than-a-window", SONG, ("protect", "song.wav", "--preview", "0.001"),
            "shorter than one noise window"),
    *[bad_setting(f"protect-window-{value}", SONG, ("protect", "song.wav", "--window-ms", value), "5 to 100 ms")
      for value in ("nan", "inf", "4", "101")],
    *[bad_setting(f"protect-rounds-{value}", SONG, ("protect", "song.wav", f"--rounds={value}"), "at least 1")
      for value in ("0", "-1")],
    *[bad_setting(f"protect-seed-{value}", SONG, ("protect", "song.wav", f"--seed={value}"), "seed must be")
      for value in ("-1", str(2**64))],
    Row("protect-seed-nan", SONG, ("protect", "song.wav", "--seed", "nan"), 2, "invalid int value"),
    Row("protect-strength-extreme", SONG, ("protect", "song.wav", "--strength", "extreme"), 2, "invalid choice"),
    bad_setting("protect-whitebox-without-model", SONG, ("protect", "song.wav", "--mode", "whitebox"), "--model"),
    refused("protect-model-missing", SONG, ("protect", "song.wav", "--mode", "whitebox", "--model", "gone.pt"),
            "does not exist"),
    refused("protect-model-not-a-checkpoint", SONG, ("protect", "song.wav", "--mode", "whitebox", "--model", "song.wav"),
            "not a readable model checkpoint"),
    refused("protect-midi-preview", CHORALE, ("protect", "bwv.mid", "--preview", "5"), "preview is for audio"),
    refused("protect-midi-masked-cloak", CHORALE, ("protect", "bwv.mid", "--cloak", "masked"), "is for audio"),
    refused("protect-midi-stems", CHORALE, ("protect", "bwv.mid", "--stems"), "stems are for audio"),

    # MIDI that holds nothing to protect or is damaged.
    refused("protect-midi-no-notes", midi("song.mid", voices=((0, []),)), ("protect", "song.mid"), "no notes"),
    refused("protect-midi-only-drums", midi("song.mid", voices=((9, [(36, 100, 0, 120), (38, 90, 480, 600)]),)),
            ("protect", "song.mid"), "no pitched note"),
    refused("protect-midi-no-tracks", no_tracks("song.mid"), ("protect", "song.mid"), "no tracks"),
    refused("protect-midi-velocity-0-notes", midi("song.mid", voices=((0, [(60, 0, 0, 480), (64, 0, 480, 960)]),)),
            ("protect", "song.mid"), "no notes"),
    refused("protect-midi-tempo-3.6-bpm", midi("song.mid", tempo_us_per_beat=0xFFFFFF), ("protect", "song.mid"), "bpm"),
    refused("protect-midi-tempo-2000-bpm", midi("song.mid", tempo_us_per_beat=30_000), ("protect", "song.mid"), "bpm"),
    refused("protect-midi-type-2", midi("song.mid", voices=((0, SONG_NOTES), (1, SONG_NOTES)), midi_type=2),
            ("protect", "song.mid"), "type 2"),
    refused("protect-midi-smpte-time", edited(midi("song.mid"), "song.mid", smpte), ("protect", "song.mid"), "SMPTE"),
    refused("protect-midi-runaway-delta-time", midi("song.mid", voices=((0, [(60, 80, 0, 480), (62, 80, 2**27, 2**27 + 480)]),)),
            ("protect", "song.mid"), "beats"),

    # Valid inputs: protected, and the output checked.
    Row("protect-wav-8khz-8bit-mono", sound("song.wav", tone(4_000, 8_000), 8_000, "PCM_U8"),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-wav-192khz-24bit-stereo", sound("song.wav", tone(38_400, 192_000, 2), 192_000, "PCM_24"),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-wav-48khz-32bit-8-channels", sound("song.wav", tone(24_000, 48_000, 8), 48_000, "PCM_32"),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-flac-16bit-3-channels", sound("song.flac", tone(FRAMES, RATE, 3)),
        ("protect", "song.flac", "-o", "out.flac"), 0, "protected", ("out.flac",), (("song.flac", "out.flac"),)),
    Row("protect-float-beyond-full-scale", sound("song.wav", tone(FRAMES, RATE, peak=1.5), subtype="FLOAT"),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-dc-only", sound("song.wav", np.full((1, FRAMES), 0.25)),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-10-ms", sound("song.wav", tone(441, 44_100), 44_100),
        ("protect", "song.wav", "-o", "out.wav"), 0, "protected", ("out.wav",), (("song.wav", "out.wav"),)),
    Row("protect-silence", sound("song.wav", SILENCE),
        ("protect", "song.wav", "-o", "out.wav"), 0, "silent", ("out.wav",), (("song.wav", "out.wav"),), untouched=True),
    Row("protect-mp3-cbr-id3v2-no-xing", lame("song.mp3"),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-mp3-vbr-no-xing", lame("song.mp3", vbr=True, id3_title=None),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-mp3-with-xing-and-lame-tag", ffmpeg("song.mp3", "libmp3lame"),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-mp3-vbr-with-xing", ffmpeg("song.mp3", "libmp3lame", vbr_quality=4),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-mp3-8khz-mono-id3v1", edited(lame("song.mp3", id3_title=None, rate=8_000, channels=1, bitrate_kbps=32),
                                              "song.mp3", id3v1),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-mp3-junk-between-frames", edited(lame("song.mp3"), "song.mp3", junk_between_frames),
        ("protect", "song.mp3", "-o", "out.mp3"), 0, "protected", ("out.mp3",), (("song.mp3", "out.mp3"),)),
    Row("protect-unicode-name", sound("Ünïcødé – 歌 🎵.wav"), ("protect", "Ünïcødé – 歌 🎵.wav"), 0, "protected",
        ("Ünïcødé – 歌 🎵.protected.wav",), (("Ünïcødé – 歌 🎵.wav", "Ünïcødé – 歌 🎵.protected.wav"),)),
    # Names and paths; silent songs (copied through) keep these rows fast.
    Row("protect-leading-dash-name", sound("-song.wav", SILENCE), ("protect", "--", "-song.wav"), 0, "silent",
        ("-song.protected.wav",), (("-song.wav", "-song.protected.wav"),), untouched=True),
    Row("protect-symlink", files(sound("song.wav", SILENCE), link("link.wav", "song.wav")), ("protect", "link.wav"), 0,
        "silent", ("link.protected.wav",), (("link.wav", "link.protected.wav"),), untouched=True),
    Row("protect-same-file-twice", sound("song.wav", SILENCE), ("protect", "song.wav", "song.wav", "-o", "out/"), 0,
        "skipped", ("out/song.protected.wav", "out/harmonycloak-manifest.jsonl"),
        (("song.wav", "out/song.protected.wav"),), untouched=True),
    Row("protect-midi-chorale", CHORALE, ("protect", "bwv.mid", "-o", "out.mid"), 0, "protected",
        ("out.mid",), (("bwv.mid", "out.mid"),)),

    # verify
    refused("verify-missing-original", SONG, ("verify", "gone.wav", "song.wav", *FAST_VERIFY), "does not exist"),
    refused("verify-text-as-protected", files(SONG, text("out.wav")), ("verify", "song.wav", "out.wav", *FAST_VERIFY),
            "not an audio file"),
    refused("verify-channel-counts-differ", files(SONG, sound("out.wav", tone(FRAMES, RATE, 2))),
            ("verify", "song.wav", "out.wav", *FAST_VERIFY), "channels but the original has 1"),
    refused("verify-empty-protected", files(SONG, raw("out.wav", b"")), ("verify", "song.wav", "out.wav", *FAST_VERIFY),
            "empty"),
    bad_setting("verify-steps-0", files(SONG, sound("out.wav")), ("verify", "song.wav", "out.wav", "--steps", "0"),
            "at least 1"),
    bad_setting("verify-seed-negative", files(SONG, sound("out.wav")), ("verify", "song.wav", "out.wav", "--seed=-1"),
            "seed must be"),
    Row("verify-steps-nan", files(SONG, sound("out.wav")), ("verify", "song.wav", "out.wav", "--steps", "nan"), 2,
        "invalid int value"),
    refused("verify-json-into-missing-folder", files(SONG, sound("out.wav")),
            ("verify", "song.wav", "out.wav", *FAST_VERIFY, "--json", "no/such/v.json"), "does not exist"),
    refused("verify-midi-against-audio", files(SONG, midi("song.mid")), ("verify", "song.wav", "song.mid", *FAST_VERIFY),
            "not an audio file"),
    refused("verify-midi-no-notes", files(midi("song.mid"), midi("out.mid", voices=((0, []),))),
            ("verify", "song.mid", "out.mid", *FAST_VERIFY), "no notes"),
    refused("verify-midi-type-2", files(midi("song.mid"), midi("out.mid", voices=((0, SONG_NOTES), (1, SONG_NOTES)),
                                                                 midi_type=2)),
            ("verify", "song.mid", "out.mid", *FAST_VERIFY), "type 2"),
    Row("verify-a-copy", files(SONG, sound("out.wav")), ("verify", "song.wav", "out.wav", *FAST_VERIFY, "--json", "v.json"),
        0, "SNR", ("v.json",)),

    # train
    refused("train-empty-wav", raw("song.wav", b""), ("train", "song.wav", "-o", "model.pt", "--preset", "tiny"), "empty"),
    refused("train-text-as-mid", text("song.mid"), ("train", "song.mid", "-o", "gan.pt", "--preset", "tiny"),
            "not a MIDI file"),
    bad_setting("train-steps-0", SONG, ("train", "song.wav", "-o", "model.pt", "--steps", "0"), "at least one step"),
    bad_setting("train-steps-negative", SONG, ("train", "song.wav", "-o", "model.pt", "--steps=-5"), "at least one step"),
    Row("train-steps-inf", SONG, ("train", "song.wav", "-o", "model.pt", "--steps", "inf"), 2, "invalid int value"),
    bad_setting("train-seed-negative", SONG, ("train", "song.wav", "-o", "model.pt", "--preset", "tiny", "--seed=-1"),
            "seed must be"),
    bad_setting("train-unknown-family", SONG, ("train", "song.wav", "-o", "model.pt", "--family", "wavenet"),
            "unknown model family"),
    bad_setting("train-midi-family-on-audio", SONG, ("train", "song.wav", "-o", "model.pt", "--family", "musegan",
                                                 "--preset", "tiny"), "train it on MIDI files"),
    bad_setting("train-unknown-preset", SONG, ("train", "song.wav", "-o", "model.pt", "--preset", "huge"), "no preset"),
    bad_setting("train-audio-and-midi", files(SONG, midi("song.mid")), ("train", "song.wav", "song.mid", "-o", "model.pt"),
            "either audio or MIDI"),
    refused("train-output-in-missing-folder", SONG,
            ("train", "song.wav", "-o", "no/such/model.pt", "--preset", "tiny", "--steps", "1"), "does not exist"),
    refused("train-output-is-a-folder", files(SONG, folder_of("models")),
            ("train", "song.wav", "-o", "models", "--preset", "tiny", "--steps", "1"), "folder"),
    refused("train-midi-type-2", midi("song.mid", voices=((0, SONG_NOTES), (1, SONG_NOTES)), midi_type=2),
            ("train", "song.mid", "-o", "gan.pt", "--preset", "tiny"), "type 2"),
    Row("train-audio", SONG, ("train", "song.wav", "-o", "model.pt", "--preset", "tiny", "--steps", "1"), 0,
        "trained", ("model.pt",)),
    Row("train-midi-100000-notes", midi("big.mid", voices=notes_100000()),
        ("train", "big.mid", "-o", "gan.pt", "--preset", "tiny", "--steps", "1"), 0, "trained", ("gan.pt",)),
]

TIMED = {"train-midi-100000-notes"}  # rows whose time the test prints


# --- running and checking ----------------------------------------------------------------------

def run(argv: tuple[str, ...]) -> tuple[int, str]:
    """Run the command line in-process: (exit code, everything it printed)."""
    if argv[0] == "protect":
        argv = ("protect", *QUICK, *argv[1:])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse
            code = exit.code
    return code, printed.getvalue()


def check_audio_output(source: Path, output: Path, untouched: bool) -> None:
    """No NaN, no clipping introduced, float beyond ±1 kept; same length, rate, channels and
    bit depth (lossless, read with libsndfile) or bitrate (MP3, decoded with ffmpeg)."""
    if output.suffix in (".wav", ".flac"):
        before, after = soundfile.info(str(source)), soundfile.info(str(output))
        assert (after.samplerate, after.channels, after.frames, after.subtype) == \
            (before.samplerate, before.channels, before.frames, before.subtype)
        clean = soundfile.read(str(source), dtype="float64", always_2d=True)[0].T
        protected = soundfile.read(str(output), dtype="float64", always_2d=True)[0].T
    else:
        clean, clean_rate, _ = decode_with_ffmpeg(source, skip_bad_packets=True)  # junk between frames
        protected, protected_rate, _ = decode_with_ffmpeg(output)
        assert protected_rate == clean_rate and protected.shape == clean.shape
        source_kbps = average_mp3_kbps(source)
        assert abs(mutagen.File(str(output)).info.bitrate / 1000 - source_kbps) <= 0.1 * source_kbps
    assert np.isfinite(protected).all()
    if untouched:
        assert np.array_equal(protected, clean)
        return
    assert not np.array_equal(protected, clean)  # something was added
    peak = np.abs(clean).max()
    if peak > 1:  # a float file beyond full scale keeps its overs, none beyond its own peak
        assert 1 + (peak - 1) / 2 < np.abs(protected).max() <= peak
    else:  # the cloak is quiet: these inputs peak at 0.3, and nothing gets near full scale
        assert np.abs(protected).max() < min(1.0, 2 * peak)


def average_mp3_kbps(path: Path) -> float:
    """The bitrate an MP3's audio frames average (a Xing/Info frame in front is not audio)."""
    data = path.read_bytes()
    frames = mp3_frames(data)
    first_offset, first_length, _, _ = frames[0]
    if any(tag in data[first_offset:first_offset + first_length] for tag in (b"Xing", b"Info")):
        frames = frames[1:]
    duration_s = sum(samples / rate for _offset, _length, samples, rate in frames)
    return 8 * sum(length for _offset, length, _samples, _rate in frames) / duration_s / 1000


def check_midi_output(source: Path, output: Path) -> None:
    """Every note of the input is in the output, unchanged (read with symusic); notes were added."""
    def notes(path: Path) -> Counter:
        score = symusic.Score(str(path))
        return Counter((note.time, note.duration, note.pitch, note.velocity)
                       for track in score.tracks for note in track.notes)

    before, after = notes(source), notes(output)
    assert not before - after and sum(after.values()) > sum(before.values())


def test_table_has_every_kind_of_case():
    """At least 60 cases; each command and each kind of input represented; ids unique."""
    ids = [row.id for row in ROWS]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    for prefix in ("protect-", "verify-", "train-"):
        assert any(i.startswith(prefix) for i in ids)
    assert {row.exit_code for row in ROWS} == {0, 1, 2}


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input(row, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with contextlib.ExitStack() as stack:
        row.make(tmp_path, stack)
        before = file_hashes(tmp_path)
        started = time.perf_counter()
        code, printed = run(row.argv)
        elapsed_s = time.perf_counter() - started
        after = file_hashes(tmp_path)
    if row.id in TIMED:
        with capsys.disabled():
            print(f"\n{row.id}: `{' '.join(row.argv)}` took {elapsed_s:.1f} s")
    assert code == row.exit_code, printed
    assert row.says.lower() in printed.lower(), printed
    assert "Traceback" not in printed
    if code == 1:
        assert any(line.startswith("error: ") for line in printed.splitlines()), printed
    assert {name: after.get(name) for name in before} == before  # inputs unchanged, none removed
    assert sorted(set(after) - set(before)) == sorted(row.writes)  # nothing else left behind
    for source, output in row.sane:
        if output.endswith((".mid", ".midi")):
            check_midi_output(tmp_path / source, tmp_path / output)
        else:
            check_audio_output(tmp_path / source, tmp_path / output, row.untouched)
