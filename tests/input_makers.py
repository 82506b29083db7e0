"""Inputs the reliability tests make, with the tools musicians' files come from: libsndfile
(soundfile), ffmpeg (PyAV), LAME (lameenc) and mido, and read back the same way. Nothing here
uses harmonycloak, so that what the tests expect is derived apart from the code under test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import soundfile


def tone(num_frames: int, sample_rate_hz: int, num_channels: int = 1, peak: float = 0.3) -> np.ndarray:
    """A 440 Hz + 660 Hz chord (channels, frames), float64, each channel a little detuned, at ``peak``."""
    t = np.arange(num_frames) / sample_rate_hz
    rows = [np.sin(2 * np.pi * 440 * (1 + 0.01 * c) * t) + 0.5 * np.sin(2 * np.pi * 660 * t + c) for c in range(num_channels)]
    samples = np.array(rows).reshape(num_channels, num_frames)
    return peak * samples / max(np.abs(samples).max(), 1e-12)


def write_soundfile(path: str | Path, samples: np.ndarray, sample_rate_hz: int, subtype: str = "PCM_16") -> Path:
    """WAV, FLAC or Ogg Vorbis (by extension) through libsndfile; samples (channels, frames)."""
    soundfile.write(str(path), samples.T, sample_rate_hz, subtype=subtype)
    return Path(path)


_FFMPEG_SAMPLE_FORMATS = {"libmp3lame": "fltp", "aac": "fltp", "libopus": "flt"}


def encode_with_ffmpeg(path: str | Path, samples: np.ndarray, sample_rate_hz: int, encoder: str,
                       bitrate_bps: int = 128_000, muxer: str | None = None, vbr_quality: int | None = None) -> Path:
    """Encode (channels, frames) samples, 1 or 2 channels, with ffmpeg: ``libmp3lame`` (an MP3
    with a Xing/LAME frame; VBR at LAME's -V ``vbr_quality`` if given, else CBR), ``aac`` (in
    .m4a, or raw ADTS with muxer "adts") or ``libopus``."""
    sample_format = _FFMPEG_SAMPLE_FORMATS[encoder]
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=sample_rate_hz)
        stream.layout, stream.format, stream.bit_rate = layout, sample_format, bitrate_bps
        if vbr_quality is not None:  # ffmpeg's -q:a: a quality scale in lambda units (FF_QP2LAMBDA = 118)
            stream.codec_context.qscale = True
            stream.codec_context.global_quality = vbr_quality * 118
        data = samples.astype(np.float32)
        for start in range(0, data.shape[1], 4096):
            chunk = data[:, start:start + 4096]
            array = chunk if sample_format == "fltp" else chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(array), format=sample_format, layout=layout)
            frame.sample_rate, frame.pts = sample_rate_hz, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return Path(path)


def decode_with_ffmpeg(path: str | Path, skip_bad_packets: bool = False) -> tuple[np.ndarray, int, int | None]:
    """Decode with PyAV/ffmpeg as a second, independent decoder; with ``skip_bad_packets``,
    packets that do not decode are passed over, as ffmpeg's command line does.

    Returns (float32 samples (channels, frames), sample rate, the stream's duration in
    frames as the container states it, or None)."""
    def decoded(container, stream):
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                if not skip_bad_packets:
                    raise

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        # Packed float (one interleaved plane): PyAV 18's to_ndarray crashes on 8 planes.
        resampler = av.AudioResampler(format="flt", layout=stream.layout, rate=stream.rate)
        frames = [out.to_ndarray() for frame in decoded(container, stream) for out in resampler.resample(frame)]
        frames += [out.to_ndarray() for out in resampler.resample(None)]
        interleaved = np.concatenate(frames, axis=1).reshape(-1, stream.codec_context.channels)
        stated = None if stream.duration is None else round(stream.duration * stream.time_base * stream.rate)
        return np.ascontiguousarray(interleaved.T), stream.rate, stated


def lame_mp3(path: str | Path, samples: np.ndarray, sample_rate_hz: int, *, vbr: bool = False,
             id3_title: str | None = "song", bitrate_kbps: int = 128) -> Path:
    """An MP3 as the `lameenc` package writes it: LAME frames with no Xing/LAME frame (so the
    file states no length), CBR at ``bitrate_kbps`` or VBR quality 4, and an ID3v2 title in front."""
    import lameenc
    from mutagen.id3 import ID3, TIT2

    encoder = lameenc.Encoder()
    encoder.set_in_sample_rate(sample_rate_hz)
    encoder.set_channels(samples.shape[0])
    encoder.set_quality(2)
    if vbr:
        encoder.set_vbr(4)
    else:
        encoder.set_bit_rate(bitrate_kbps)
    pcm = np.round(np.clip(samples.T, -1, 1) * 32767).astype("<i2").tobytes()
    Path(path).write_bytes(bytes(encoder.encode(pcm) + encoder.flush()))
    if id3_title is not None:
        tag = ID3()
        tag.add(TIT2(encoding=3, text=id3_title))
        tag.save(str(path))
    return Path(path)


def id3v2_bytes(data: bytes) -> int:
    """Size of an ID3v2 tag at the start of ``data`` (0 if none): a 10-byte header, then the
    size in 4 bytes of 7 bits each (ID3v2.4 §3.1)."""
    if data[:3] != b"ID3":
        return 0
    return 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])


def mp3_frames(data: bytes) -> list[tuple[int, int, int, int]]:
    """(offset, bytes, samples, sample rate) of each layer III frame of an MP3 after its ID3v2
    tag, following frame lengths from the header fields (ISO/IEC 11172-3 and 13818-3: 144 or,
    in MPEG 2 and 2.5, 72 times bitrate / rate, plus padding) up to the first byte that starts
    no frame (an ID3v1 tag, junk, the end)."""
    kbps = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
            2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
    rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
    start = id3v2_bytes(data)
    frames = []
    while start + 4 <= len(data):
        header = int.from_bytes(data[start:start + 4], "big")
        version, bitrate_index, rate_index = (header >> 19) & 3, (header >> 12) & 15, (header >> 10) & 3
        if header >> 21 != 0x7FF or version == 1 or (header >> 17) & 3 != 1 or bitrate_index in (0, 15) \
                or rate_index == 3:
            break
        rate = rates[version][rate_index]
        samples = 1152 if version == 3 else 576
        length = samples // 8 * kbps[3 if version == 3 else 2][bitrate_index] * 1000 // rate + ((header >> 9) & 1)
        frames.append((start, length, samples, rate))
        start += length
    return frames


def mp3_frame_offsets(data: bytes) -> list[int]:
    """Byte offsets of the layer III frames of an MP3 (see `mp3_frames`)."""
    return [offset for offset, _length, _samples, _rate in mp3_frames(data)]


def midi_file(path: str | Path, voices: list[tuple[int, list[tuple[int, int, int, int]]]], *,
              tempo_us_per_beat: int = 500_000, midi_type: int = 1, ticks_per_beat: int = 480) -> Path:
    """A Standard MIDI File written byte by byte from the MIDI 1.0 specification: a conductor
    track with the tempo, then one track per voice (channel, notes as (pitch, velocity, start
    tick, end tick)), each starting with a program change to 0; ``midi_type`` 0 puts
    everything in one track. Note-offs are note-ons of velocity 0 (running status unused)."""
    def delta(ticks: int) -> bytes:  # variable-length quantity, 7 bits a byte, high bit = more
        out = [ticks & 0x7F]
        while ticks > 0x7F:
            ticks >>= 7
            out.append(0x80 | (ticks & 0x7F))
        return bytes(reversed(out))

    def chunk(events: list[tuple[int, int, bytes]]) -> bytes:
        body, previous = bytearray(), 0
        for tick, _order, message in sorted(events, key=lambda event: event[:2]):
            body += delta(tick - previous) + message
            previous = tick
        body += b"\x00\xff\x2f\x00"  # end of track
        return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)

    conductor = [(0, 0, b"\xff\x51\x03" + tempo_us_per_beat.to_bytes(3, "big"))]
    tracks = [conductor]
    for channel, notes in voices:
        events = [(0, 0, bytes([0xC0 | channel, 0]))]
        for pitch, velocity, start, end in notes:
            events.append((start, 2, bytes([0x90 | channel, pitch, velocity])))
            events.append((end, 1, bytes([0x90 | channel, pitch, 0])))  # offs before ons at one tick
        tracks.append(events)
    if midi_type == 0:
        tracks = [[event for events in tracks for event in events]]
    header = b"MThd" + (6).to_bytes(4, "big") + bytes([0, midi_type]) + len(tracks).to_bytes(2, "big") \
        + ticks_per_beat.to_bytes(2, "big")
    Path(path).write_bytes(header + b"".join(chunk(events) for events in tracks))
    return Path(path)


def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (through links), by path relative to it; a link
    to nothing is recorded by its target."""
    folder = Path(folder)
    hashes = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink() and not path.exists():
            hashes[name] = f"link to {path.readlink()}"
        elif path.is_file():
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes
