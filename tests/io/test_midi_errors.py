"""Every bad input raises MidiFileError with a one-line message that names the file; writes
are atomic."""

from __future__ import annotations

import os
import zipfile

import mido
import pytest

from harmonycloak.errors import HarmonyCloakError, MidiFileError
from harmonycloak.io import atomic as atomic_io
from harmonycloak.io.midi import read_midi, read_musicxml, write_midi
from test_midi_helpers import events_to_track, note_events, write_band


def assert_names_file(error: pytest.ExceptionInfo, path, *words):
    message = str(error.value)
    assert isinstance(error.value, HarmonyCloakError)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message, message


def save(tracks, path, ticks_per_beat=480, type=1):
    midi = mido.MidiFile(type=type, ticks_per_beat=ticks_per_beat)
    midi.tracks.extend(tracks)
    midi.save(path)
    return path


@pytest.mark.parametrize("keep", [0.95, 0.6, 0.3])
def test_truncated_file(tmp_path, keep):
    data = write_band(tmp_path / "band.mid").read_bytes()
    path = tmp_path / "cut.mid"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "cut short")


def test_header_only(tmp_path):
    path = tmp_path / "header.mid"
    path.write_bytes(write_band(tmp_path / "band.mid").read_bytes()[:14])
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path)


def test_damaged_track_data(tmp_path):
    data = bytearray(write_band(tmp_path / "band.mid").read_bytes())
    first_track = data.index(b"MTrk")
    data[first_track:first_track + 4] = b"XXXX"  # a chunk that is not a track
    path = tmp_path / "damaged.mid"
    path.write_bytes(bytes(data))
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "damaged")


def test_text_file_named_mid(tmp_path):
    path = tmp_path / "notes.mid"
    path.write_text("These are my song notes, not a MIDI file.\n")
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "not a MIDI file")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(MidiFileError) as error:
        read_midi(tmp_path / "empty.mid")
    assert_names_file(error, tmp_path / "empty.mid", "empty")
    with pytest.raises(MidiFileError) as error:
        read_midi(tmp_path / "missing.mid")
    assert_names_file(error, tmp_path / "missing.mid", "does not exist")


def test_seventeen_channels(tmp_path):
    # Port 0 plays on all 16 channels; a second track chunk on port 1 plays a 17th.
    port0 = [(0, mido.MetaMessage("midi_port", port=0))]
    for channel in range(16):
        port0 += note_events(channel, [(60, 80, 0, 480)])
    port1 = [(0, mido.MetaMessage("midi_port", port=1))] + note_events(0, [(64, 80, 0, 480)])
    path = save([events_to_track(port0), events_to_track(port1)], tmp_path / "many.mid")
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "17 MIDI channels")


def test_sixteen_channels_on_two_ports_are_fine(tmp_path):
    port0 = [(0, mido.MetaMessage("midi_port", port=0))] + note_events(0, [(60, 80, 0, 480)])
    port1 = [(0, mido.MetaMessage("midi_port", port=1))]
    for channel in range(15):
        port1 += note_events(channel, [(64, 80, 0, 480)])
    path = save([events_to_track(port0), events_to_track(port1)], tmp_path / "sixteen.mid")
    assert len(read_midi(path).tracks) == 16


# A MIDI tempo is 1 to 16777215 microseconds a beat, so the slowest a file can say is 3.58 bpm
# (0.5 bpm cannot be written in MIDI: it is tested through MusicXML below); 0 is damage.
@pytest.mark.parametrize("microseconds_per_beat", [0xFFFFFF, round(60e6 / 5), round(60e6 / 2000), 0])
def test_absurd_tempo(tmp_path, microseconds_per_beat):
    events = [(0, mido.MetaMessage("set_tempo", tempo=microseconds_per_beat))] + note_events(0, [(60, 80, 0, 480)])
    path = save([events_to_track(events)], tmp_path / "tempo.mid")
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "bpm")


def test_absurd_tempo_in_musicxml(tmp_path):
    path = tmp_path / "slow.musicxml"
    path.write_text(
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list>'
        '<score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
        '<part id="P1"><measure number="1"><attributes><divisions>1</divisions>'
        '<time><beats>4</beats><beat-type>4</beat-type></time></attributes>'
        '<sound tempo="0.5"/>'
        '<note><pitch><step>C</step><octave>4</octave></pitch><duration>4</duration></note>'
        '</measure></part></score-partwise>'
    )
    with pytest.raises(MidiFileError) as error:
        read_musicxml(path)
    assert_names_file(error, path, "0.5 bpm")


@pytest.mark.parametrize("bpm", [10, 40, 208, 1000])
def test_tempi_at_and_inside_the_bounds_are_fine(tmp_path, bpm):
    events = [(0, mido.MetaMessage("set_tempo", tempo=round(60e6 / bpm)))] + note_events(0, [(60, 80, 0, 480)])
    path = save([events_to_track(events)], tmp_path / "tempo.mid")
    assert read_midi(path).tempo_map.bpm[0] == pytest.approx(bpm, rel=1e-5)


def test_no_notes(tmp_path):
    events = [(0, mido.MetaMessage("set_tempo", tempo=500000)),
              (0, mido.Message("program_change", channel=0, program=5)),
              (480, mido.Message("note_off", channel=0, note=60, velocity=0))]  # an off without an on
    path = save([events_to_track(events, name="silence")], tmp_path / "silent.mid")
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "no notes")


def test_type_2_and_smpte_are_refused(tmp_path):
    track = events_to_track(note_events(0, [(60, 80, 0, 480)]))
    path = save([track, track], tmp_path / "type2.mid", type=2)
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "type 2")
    data = bytearray(save([track], tmp_path / "smpte.mid").read_bytes())
    data[12:14] = bytes([0xE7, 0x28])  # -25 frames per second, 40 ticks per frame
    (tmp_path / "smpte.mid").write_bytes(bytes(data))
    with pytest.raises(MidiFileError) as error:
        read_midi(tmp_path / "smpte.mid")
    assert_names_file(error, tmp_path / "smpte.mid", "SMPTE")


def test_runaway_delta_time(tmp_path):
    events = note_events(0, [(60, 80, 0, 480), (62, 80, 2**27, 2**27 + 480)])
    path = save([events_to_track(events)], tmp_path / "long.mid")
    with pytest.raises(MidiFileError) as error:
        read_midi(path)
    assert_names_file(error, path, "beats")


def test_unreadable_musicxml(tmp_path):
    text = tmp_path / "score.musicxml"
    text.write_text("<score-partwise><part-list>")  # cut short
    with pytest.raises(MidiFileError) as error:
        read_musicxml(text)
    assert_names_file(error, text, "MusicXML")
    archive = tmp_path / "score.mxl"
    archive.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(MidiFileError) as error:
        read_musicxml(archive)
    assert_names_file(error, archive, "MusicXML")
    empty_zip = tmp_path / "empty.mxl"
    with zipfile.ZipFile(empty_zip, "w") as handle:
        handle.writestr("readme.txt", "no score here")
    with pytest.raises(MidiFileError) as error:
        read_musicxml(empty_zip)
    assert_names_file(error, empty_zip, "MusicXML")


def test_musicxml_without_notes(tmp_path):
    path = tmp_path / "rests.musicxml"
    path.write_text(
        '<?xml version="1.0"?><score-partwise version="3.1"><part-list>'
        '<score-part id="P1"><part-name>Voice</part-name></score-part></part-list>'
        '<part id="P1"><measure number="1"><attributes><divisions>1</divisions>'
        '<time><beats>4</beats><beat-type>4</beat-type></time></attributes>'
        '<note><rest/><duration>4</duration></note></measure></part></score-partwise>'
    )
    with pytest.raises(MidiFileError) as error:
        read_musicxml(path)
    assert_names_file(error, path, "no notes")


def test_write_into_a_missing_folder(tmp_path):
    score = read_midi(write_band(tmp_path / "band.mid"))
    target = tmp_path / "no such folder" / "out.mid"
    with pytest.raises(MidiFileError) as error:
        write_midi(score, target)
    assert_names_file(error, target, "does not exist")


def test_failed_write_leaves_nothing_behind_and_keeps_the_old_file(tmp_path, monkeypatch):
    source = write_band(tmp_path / "band.mid")
    score = read_midi(source)
    target = tmp_path / "out.mid"
    target.write_bytes(b"previous version")
    before = sorted(os.listdir(tmp_path))

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_io.os, "replace", broken_replace)
    with pytest.raises(MidiFileError) as error:
        write_midi(score, target)
    assert_names_file(error, target, "No space left")
    assert sorted(os.listdir(tmp_path)) == before
    assert target.read_bytes() == b"previous version"


def test_written_midi_has_the_users_usual_permissions(tmp_path):
    target = write_midi(read_midi(write_band(tmp_path / "band.mid")), tmp_path / "out.mid")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not the 0o600 of a private temporary file
