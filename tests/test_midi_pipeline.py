"""Protecting MIDI end to end on a real chorale: black-box and white-box, reports, determinism,
training white-box targets, `verify`, and every kind of bad MIDI input on the command line."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import mido
import pytest

import harmonycloak
from harmonycloak.cli import main
from harmonycloak.errors import ModelError
from harmonycloak.io.midi import read_midi
from harmonycloak.models.checkpoint import save_checkpoint
from harmonycloak.models.registry import build_model
from harmonycloak.settings import ProtectionSettings
from harmonycloak.flows.midi.train import train_midi_model

QUICK = ProtectionSettings(model_preset="tiny", max_rounds=1, pgd_steps=2)
CLI_QUICK = ["--preset", "tiny", "--rounds", "1", "--no-report"]


def test_black_box_protects_a_chorale_with_a_report_and_a_picture(tmp_path, chorale_midi):
    result = harmonycloak.protect(chorale_midi, tmp_path / "out.mid", QUICK)
    report = json.loads(result.report_path.read_text())
    assert report["kind"] == "midi" and report["surrogates"] == ["musegan"] * 10
    assert report["alpha"] == pytest.approx(0.22)  # the GAN's α (paper §5.1)
    assert [len(models) for models in report["rounds"]["sampled_models"]] == [7]  # 7 of the bag of 10
    assert report["tracks_cloaked"] == ["soprano", "alto", "tenor", "bass"] and report["notes_added"] > 300
    assert report["cloak_below_its_note_db"]["min"] >= 32.0  # the medium strength's headroom
    assert set(report["surrogate_loss_after"]) == {"clean", "protected"}
    assert result.picture_path.stat().st_size > 10_000
    back = harmonycloak.load(result.output_path)  # a Score, read as any MIDI file
    # each layer is named and voiced as its part: no name tells an attacker which tracks to drop
    assert [(t.name, t.program) for t in back.tracks] == [(t.name, t.program) for t in back.tracks[:4]] * 2
    assert back.num_notes == read_midi(chorale_midi).num_notes + report["notes_added"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, chorale_midi):
    paths = [harmonycloak.protect(chorale_midi, tmp_path / name, replace(QUICK, seed=seed), write_report=False).output_path
             for name, seed in (("a.mid", 0), ("b.mid", 0), ("c.mid", 1))]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


@pytest.mark.parametrize("family, alpha", [("musegan", 0.22), ("symphonynet", 0.30)])
def test_white_box_protects_against_a_named_checkpoint_of_each_family(tmp_path, chorale_midi, family, alpha):
    checkpoint, curve = train_midi_model([chorale_midi], tmp_path / f"{family}.pt", family, "tiny", steps=2)
    assert len(curve) == 2
    settings = replace(QUICK, mode="whitebox", model_checkpoint=checkpoint)
    result = harmonycloak.protect(chorale_midi, tmp_path / "out.mid", settings, write_report=False)
    assert result.report["surrogates"] == [family] and result.report["alpha"] == pytest.approx(alpha)
    loss = result.report["surrogate_loss_after"]
    assert math.isfinite(loss["clean"]) and math.isfinite(loss["protected"])


def test_white_box_protects_against_a_zoo_model_named_zoo_colon_name(tmp_path, chorale_midi):
    settings = replace(QUICK, mode="whitebox", model_checkpoint=Path("zoo:musegan"))
    result = harmonycloak.protect(chorale_midi, tmp_path / "out.mid", settings, write_report=False)
    assert result.report["surrogates"] == ["musegan"] and result.report["alpha"] == pytest.approx(0.22)
    assert result.report["settings"]["model_checkpoint"] == "zoo:musegan"
    assert result.report["notes_added"] > 300


def test_error_maximising_notes_raise_the_model_s_loss_above_what_error_minimising_ones_leave(tmp_path, chorale_midi):
    checkpoint, _ = train_midi_model([chorale_midi], tmp_path / "symphonynet.pt", "symphonynet", "tiny", steps=2)
    ratios = {}
    for objective in ("minmin", "maxloss"):
        settings = replace(QUICK, mode="whitebox", model_checkpoint=checkpoint, objective=objective, pgd_steps=4)
        report = harmonycloak.protect(chorale_midi, tmp_path / f"{objective}.mid", settings, write_report=False).report
        assert report["objective"] == objective
        ratios[objective] = report["surrogate_loss_after"]["protected"] / report["surrogate_loss_after"]["clean"]
    assert ratios["maxloss"] > 1 and ratios["maxloss"] > ratios["minmin"]


def test_a_checkpoint_for_other_tracks_or_for_audio_is_refused_and_nothing_is_written(tmp_path, chorale_midi):
    two_tracks = save_checkpoint(build_model("musegan", "tiny"), "musegan", tmp_path / "two.pt")  # tiny: 2 tracks
    audio = save_checkpoint(build_model("ar-gru", "tiny"), "ar-gru", tmp_path / "audio.pt")
    for checkpoint, words in ((two_tracks, "reads 2 tracks"), (audio, "audio model")):
        settings = replace(QUICK, mode="whitebox", model_checkpoint=checkpoint)
        with pytest.raises(ModelError, match=words):
            harmonycloak.protect(chorale_midi, tmp_path / "out.mid", settings)
        assert not (tmp_path / "out.mid").exists()


@pytest.mark.parametrize("family", ["musegan", "symphonynet"])
def test_training_on_a_chorale_lowers_the_models_loss(tmp_path, chorale_midi, family):
    """SymphonyNet's NLL falls; MuseGAN's discriminator loss falls from chance (log 4) as it learns
    to tell the chorale from its generator's output."""
    _, curve = train_midi_model([chorale_midi], tmp_path / "m.pt", family, "tiny", steps=60, seed=0,
                                learning_rate=1e-3)
    first, last = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
    if family == "musegan":
        assert abs(curve[0] - math.log(4)) < 0.1
    assert last < 0.8 * first


# ------------------------------------------------------------------------ the command line


def test_protect_then_verify_on_the_command_line(tmp_path, chorale_midi, capsys):
    song = tmp_path / "chorale.mid"
    shutil.copy(chorale_midi, song)
    assert main(["protect", str(song), "--preset", "tiny", "--rounds", "1"]) == 0
    protected = tmp_path / "chorale.protected.mid"
    assert protected.exists() and (tmp_path / "chorale.protected.report.json").exists()
    assert (tmp_path / "chorale.protected.report.png").exists()
    capsys.readouterr()
    assert main(["verify", str(song), str(protected), "--steps", "2", "--json", str(tmp_path / "v.json")]) == 0
    printed = capsys.readouterr().out
    for words in ("original notes unchanged   344", "notes added", "How protected"):
        assert words in printed
    measured = json.loads((tmp_path / "v.json").read_text())
    assert measured["changes"]["original_notes_moved_or_removed"] == 0
    if measured["audibility"] is not None:  # FluidSynth installed
        assert measured["audibility"]["noise_to_mask_ratio_db"]["fraction_above_0db"] == 0.0


def midi_with(path, tracks, ticks_per_beat=480):
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages + [mido.MetaMessage("end_of_track", time=0)]))
    midi.save(path)
    return path


def note(channel, pitch=60, length=480):
    return [mido.Message("note_on", channel=channel, note=pitch, velocity=80, time=0),
            mido.Message("note_off", channel=channel, note=pitch, velocity=0, time=length)]


def bad_midi_inputs(folder, chorale_midi):
    """(name, file, words the one-line error must contain) for every kind of bad MIDI input."""
    cases = []
    (folder / "lyrics.mid").write_text("these are my lyrics, not MIDI")
    cases.append(("not MIDI", folder / "lyrics.mid", "not a MIDI file"))
    whole = chorale_midi.read_bytes()
    (folder / "truncated.mid").write_bytes(whole[: len(whole) // 2])
    cases.append(("truncated", folder / "truncated.mid", "cut short"))
    body = b"\x00\x90\x3c\xc8\x00\xff\x2f\x00"  # a note-on whose velocity byte is a status byte
    (folder / "malformed.mid").write_bytes(whole[:14] + b"MTrk" + len(body).to_bytes(4, "big") + body)
    cases.append(("malformed", folder / "malformed.mid", "damaged"))
    midi_with(folder / "silent.mid", [[mido.MetaMessage("set_tempo", tempo=500000, time=0)]])
    cases.append(("no notes", folder / "silent.mid", "no notes"))
    midi_with(folder / "tempo.mid", [[mido.MetaMessage("set_tempo", tempo=1, time=0)], note(0)])
    cases.append(("absurd tempo", folder / "tempo.mid", "bpm"))
    ports = [[mido.MetaMessage("midi_port", port=port, time=0)] + [m for c in range(9) for m in note(c)]
             for port in (0, 1)]  # 9 channels on each of two ports: 18 (port, channel) pairs
    midi_with(folder / "channels.mid", ports)
    cases.append(("more than 16 channels", folder / "channels.mid", "18 MIDI channels"))
    return cases


@pytest.mark.parametrize("index", range(6))
def test_each_bad_midi_input_gets_a_one_line_error_and_no_output(tmp_path, chorale_midi, capsys, index):
    inputs = tmp_path / "in"
    inputs.mkdir()
    name, path, words = bad_midi_inputs(inputs, chorale_midi)[index]
    out = tmp_path / "out"
    out.mkdir()
    code = main(["protect", str(path), "-o", str(out / "protected.mid"), *CLI_QUICK])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 1, name
    assert error[0].startswith("error: ") and path.name in error[0], (name, error)
    assert words.lower() in error[0].lower(), (name, error[0])
    assert error[1:] == ["1 of 1 file(s) failed"] and "Traceback" not in "\n".join(error)
    assert list(out.iterdir()) == []


def test_a_one_track_song_of_one_phrase_is_protected(tmp_path):
    """One melody, two 4/4 bars: a single phrase for the tiny bag, so every batch holds one phrase."""
    track = [m for beat in range(8) for m in note(0, 60 + beat % 5)]
    path = midi_with(tmp_path / "melody.mid", [track])
    result = harmonycloak.protect(path, tmp_path / "out.mid", QUICK, write_report=False)
    assert result.report["segments"] == 1 and result.report["tracks_cloaked"] == ["track 1"]
    assert result.report["notes_added"] >= 8


def test_train_then_white_box_protect_on_the_command_line(tmp_path, chorale_midi, capsys):
    model = tmp_path / "gan.pt"
    assert main(["train", str(chorale_midi), "-o", str(model), "--preset", "tiny", "--steps", "2"]) == 0
    assert "trained musegan (tiny) for 2 steps" in capsys.readouterr().out
    out = tmp_path / "out.mid"
    assert main(["protect", str(chorale_midi), "-o", str(out), "--mode", "whitebox", "--model", str(model),
                 *CLI_QUICK]) == 0
    assert out.exists() and read_midi(out).num_notes > read_midi(chorale_midi).num_notes


def test_tracks_beyond_the_free_channels_are_named_in_the_report(tmp_path):
    """14 melodic tracks on 14 channels leave one free melodic channel: the loudest track gets the layer."""
    channels = [c for c in range(16) if c != 9][:14]
    tracks = [[mido.MetaMessage("track_name", name=f"part {c}", time=0)]
              + [m for beat in range(8) for m in note(c, 48 + c + beat % 3)] for c in channels]
    tracks[5] = tracks[5][:1] + [m.copy(velocity=m.velocity and 120) for m in tracks[5][1:]]  # the loudest
    path = midi_with(tmp_path / "many.mid", tracks)
    result = harmonycloak.protect(path, tmp_path / "out.mid", QUICK, write_report=False)
    assert result.report["tracks_cloaked"] == ["part 5"]
    assert len(result.report["tracks_without_noise"]) == 13
    assert len(mido.MidiFile(tmp_path / "out.mid").tracks) == 15


def test_verify_refuses_a_file_whose_extra_tracks_are_not_parts_of_the_original_s_instruments(tmp_path, chorale_midi):
    from harmonycloak.errors import MidiFileError
    from harmonycloak.flows.midi.verify import split_layers
    from harmonycloak.music import Notes, Track

    original = read_midi(chorale_midi)
    protected = harmonycloak.load(harmonycloak.protect(chorale_midi, tmp_path / "out.mid", QUICK,
                                                       write_report=False).output_path)
    base, layers = split_layers(original, protected, tmp_path / "out.mid")
    assert len(base) == 4 and len(layers) == 4
    stranger = Track("flute", 73, False, Notes.from_arrays([72], [40], [0], [480]))
    protected.tracks = protected.tracks + [stranger]
    with pytest.raises(MidiFileError, match="protected version"):
        split_layers(original, protected, tmp_path / "out.mid")
