"""The frames of an MPEG layer III (MP3) file, read by hand.

An MP3 file is a chain of frames, each starting with a 4-byte header from which its length
in bytes follows (ISO/IEC 11172-3 §2.4.2.3, 13818-3 for the 2 and 2.5 extensions), with tags
(ID3v2 in front; ID3v1, APE, Lyrics3 behind) and sometimes junk between them. Only an encoder's
Xing/Info or VBRI frame, the first of the chain, states how many frames the file holds; most
constant-bitrate files (from lameenc, many encoders, streaming rips) have none, and then the
length libsndfile and mutagen report is a guess from the file size, which proves nothing.

What `describe` tells `read_audio`: whether the file states its length (a Xing/Info or VBRI
frame count), so that a decoded length short of it means the file is truncated; whether the
last frame of the chain ends beyond the end of the file, so that the file was cut in the
middle of a frame, whatever it states; and the average bitrate of the frames (a file without
a Xing frame states none, and the first frame's bitrate is not the average of a VBR file).

Written by hand because neither libsndfile (mpg123) nor ffmpeg reports a cut-off last frame,
and mutagen's header search stops after the first frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Bit rates (kbps) of layer III by bit-rate index; 0 is "free format", 15 is forbidden.
_MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Sample rates (Hz) by version bits (0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1) and rate index.
_RATES_HZ = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}
_LAYER_III_BITS = 0b01
_ID3V2_HEADER_BYTES = 10


@dataclass(frozen=True)
class _Frame:
    """One layer III frame header: the stream it belongs to and its length in bytes."""

    version_bits: int  # 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    rate_index: int
    mono: bool
    length_bytes: int

    def same_stream(self, other: _Frame) -> bool:
        return (self.version_bits, self.rate_index) == (other.version_bits, other.rate_index)


def _frame_at(data: bytes, offset: int) -> _Frame | None:
    """The layer III frame header at ``offset``, or None (no sync, another layer, free format)."""
    if offset + 4 > len(data):
        return None
    header = int.from_bytes(data[offset:offset + 4], "big")
    if header >> 21 != 0x7FF:
        return None
    version_bits = (header >> 19) & 0b11
    layer_bits = (header >> 17) & 0b11
    bitrate_index = (header >> 12) & 0b1111
    rate_index = (header >> 10) & 0b11
    if version_bits == 1 or layer_bits != _LAYER_III_BITS or bitrate_index in (0, 15) or rate_index == 3:
        return None
    padding = (header >> 9) & 1
    kbps = (_MPEG1_KBPS if version_bits == 3 else _MPEG2_KBPS)[bitrate_index]
    rate_hz = _RATES_HZ[version_bits][rate_index]
    # Layer III: 1152 samples a frame in MPEG 1, 576 in MPEG 2 and 2.5; a slot is one byte.
    samples_per_frame = 1152 if version_bits == 3 else 576
    length = samples_per_frame // 8 * kbps * 1000 // rate_hz + padding
    return _Frame(version_bits, rate_index, (header >> 6) & 0b11 == 0b11, length)


def _audio_start(data: bytes) -> int:
    """Where the audio starts: after any ID3v2 tags in front (size: 4 bytes of 7 bits each)."""
    offset = 0
    while data[offset:offset + 3] == b"ID3" and offset + _ID3V2_HEADER_BYTES <= len(data):
        flags = data[offset + 5]
        size_bytes = data[offset + 6:offset + 10]
        size = 0
        for byte in size_bytes:
            size = (size << 7) | (byte & 0x7F)
        footer = _ID3V2_HEADER_BYTES if flags & 0x10 else 0
        offset += _ID3V2_HEADER_BYTES + size + footer
    return offset


def _first_frame(data: bytes, start: int) -> tuple[int, _Frame] | None:
    """The first frame at or after ``start`` that the next frame confirms (or that ends the file)."""
    offset = data.find(b"\xff", start)
    while offset != -1:
        frame = _frame_at(data, offset)
        if frame is not None:
            end = offset + frame.length_bytes
            following = _frame_at(data, end)
            if end == len(data) or (following is not None and following.same_stream(frame)):
                return offset, frame
        offset = data.find(b"\xff", offset + 1)
    return None


@dataclass(frozen=True)
class CutFrame:
    """A last frame that the file ends inside of."""

    offset: int  # where its header is, in bytes from the start of the file
    present_bytes: int
    stated_bytes: int


@dataclass(frozen=True)
class Mp3Facts:
    """What the frame chain of an MP3 file says.

    Attributes:
        states_frame_count: the first frame is a Xing/Info or VBRI frame stating a frame count.
        cut_frame: the frame the file ends inside of, or None when every frame is whole.
        average_bitrate_bps: the frames' bytes over their duration (the bitrate of a CBR file).
    """

    states_frame_count: bool
    cut_frame: CutFrame | None
    average_bitrate_bps: int


def describe(path: str | Path) -> Mp3Facts | None:
    """Follow the frame chain of ``path``; None if it holds no confirmed layer III frame.

    The chain starts at the first confirmed frame after the ID3v2 tags; after junk it
    resynchronises on the next confirmed frame, as decoders do. A frame is only taken as cut
    when the chain leads to it (its header lies exactly where the frame before it ends) and
    it belongs to the same stream; tags or junk at the end of the file end the chain.
    """
    data = Path(path).read_bytes()
    found = _first_frame(data, _audio_start(data))
    if found is None:
        return None
    states_count = _states_frame_count(data, *found)
    first = found[1]
    samples_per_frame = 1152 if first.version_bits == 3 else 576
    rate_hz = _RATES_HZ[first.version_bits][first.rate_index]
    num_frames = num_bytes = 0
    cut = None
    while found is not None and cut is None:
        offset, start = found
        sync = data[offset:offset + 2]  # sync word, version, layer: the same in every frame of the stream
        frame: _Frame | None = start
        while frame is not None and frame.same_stream(start):
            end = offset + frame.length_bytes
            if end > len(data):
                cut = CutFrame(offset, len(data) - offset, frame.length_bytes)
                break
            num_frames, num_bytes = num_frames + 1, num_bytes + frame.length_bytes
            offset, frame = end, _frame_at(data, end)
        rest = data[offset:]
        if cut is None and 0 < len(rest) < 4 and rest[:2] == sync[:len(rest[:2])]:
            cut = CutFrame(offset, len(rest), start.length_bytes)  # cut inside the next frame's header
        found = _first_frame(data, offset + 1) if offset < len(data) else None
    duration_s = max(num_frames, 1) * samples_per_frame / rate_hz
    return Mp3Facts(states_count, cut, round(8 * num_bytes / duration_s))


def _states_frame_count(data: bytes, offset: int, frame: _Frame) -> bool:
    """Whether the frame at ``offset`` is a Xing/Info or VBRI frame that states a frame count."""
    # The Xing/Info tag follows the side information: 32 bytes (MPEG 1 stereo), 17 (MPEG 1
    # mono, MPEG 2/2.5 stereo) or 9 (MPEG 2/2.5 mono); its flags' bit 0 says a count follows.
    side_info = (17 if frame.mono else 32) if frame.version_bits == 3 else (9 if frame.mono else 17)
    xing = offset + 4 + side_info
    if data[xing:xing + 4] in (b"Xing", b"Info") and len(data) >= xing + 8:
        return bool(int.from_bytes(data[xing + 4:xing + 8], "big") & 1)
    # VBRI (Fraunhofer): always 32 bytes after the header, a frame count at byte 14 of it.
    return data[offset + 36:offset + 40] == b"VBRI"
