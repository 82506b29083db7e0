"""End-to-end protection on real music through the public API."""

import json
import math
from dataclasses import replace
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile
import torch

import harmonycloak
from harmonycloak.errors import AudioFileError, ModelError
from harmonycloak.io.audio import read_audio, write_audio
from harmonycloak.flows.audio.protect import protect_audio_file as protect_file
from harmonycloak.flows.audio.protect import protect_stems
from harmonycloak.settings import BAND_CHECK_LIMIT_DB, ProtectionSettings
from harmonycloak.flows.audio.train import train_audio_model

# the paper's method with seconds-fast surrogates: the plumbing every cloak and objective shares
QUICK = ProtectionSettings(cloak="dominant", objective="minmin", model_preset="tiny", max_rounds=1, pgd_steps=3)


@pytest.fixture(scope="module")
def song_wav(tmp_path_factory, example_song) -> Path:
    """Three seconds from the middle of the example song as 16-bit WAV."""
    audio = read_audio(example_song)
    middle = audio.num_frames // 2
    excerpt = replace(audio, samples=audio.samples[:, middle : middle + 3 * audio.sample_rate_hz], format=None)
    return write_audio(excerpt, tmp_path_factory.mktemp("song") / "excerpt.wav")


def test_protects_the_example_song_keeping_format_rate_channels_length_and_tags(tmp_path, example_song):
    result = harmonycloak.protect(example_song, tmp_path / "out.ogg", replace(QUICK, preview_s=4.0))
    original, protected = read_audio(example_song), read_audio(result.output_path)
    assert protected.format.container == "ogg" and protected.format.codec == "vorbis"
    assert abs(protected.format.bitrate_bps - original.format.bitrate_bps) <= 0.05 * original.format.bitrate_bps
    assert (protected.sample_rate_hz, protected.num_channels) == (44_100, 2)
    assert protected.num_frames == 4 * 44_100
    assert mutagen.File(result.output_path)["title"] == ["Elf Land"]
    report = json.loads(result.report_path.read_text())
    assert report["seed"] == 0 and report["settings"]["preview_s"] == 4.0
    assert set(report["surrogate_loss_before"]) == {"clean", "protected"}
    assert result.picture_path.stat().st_size > 10_000


def test_the_default_protects_audio_with_the_reverse_gradient_of_the_zoo_s_next_frame_models_and_codec_lm(
        tmp_path, example_song):
    result = harmonycloak.protect(example_song, tmp_path / "out.wav", ProtectionSettings(preview_s=3.0))
    report = json.loads(result.report_path.read_text())
    assert report["objective"] == "reverse-gradient"
    assert report["surrogates"] == ["ar-transformer", "ar-gru", "ar-tcn", "codec-lm"]
    assert (report["settings"]["cloak"], report["settings"]["bound_rule"]) == ("masked-gain", "band-pool")
    assert len(report["rounds"]["protected_loss"]) == 1 and report["rounds"]["protected_loss"][0] < 1.0
    # the band-pool rule keeps every Bark band's summed noise under the band's lowest threshold (less the
    # headroom), and the written noise is held to the band check's limit (`cloak.band_check`)
    assert report["noise_to_mask_ratio_db"]["band_p95_db"] <= BAND_CHECK_LIMIT_DB + 0.1
    assert report["verdict"]["inaudible"]
    assert abs(report["loudness_change_lu"]) < 0.05  # the noise is made loudness-neutral (`cloak.loudness`)


def test_noise_is_added_within_the_masking_budget(tmp_path, song_wav):
    result = protect_file(song_wav, tmp_path / "out.wav", QUICK)
    original, protected = read_audio(song_wav).samples, read_audio(result.output_path).samples
    noise = protected - original
    assert np.abs(noise).max() > 0  # something was added
    # the dominant-tone noise sits ≥ 14 dB under the music's strongest partial: far under the music
    assert result.report["snr_db"] > 20
    assert result.report["noise_to_mask_ratio_db"]["fraction_above_0db"] < 0.01
    assert result.report["clipped_samples"]["protected"] == 0


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, song_wav):
    first = protect_file(song_wav, tmp_path / "a.wav", QUICK, write_report=False).output_path
    second = protect_file(song_wav, tmp_path / "b.wav", QUICK, write_report=False).output_path
    other = protect_file(song_wav, tmp_path / "c.wav", replace(QUICK, seed=1), write_report=False).output_path
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_ogg_output_is_byte_identical_for_the_same_seed(tmp_path, example_song):
    settings = replace(QUICK, preview_s=2.0)
    first = protect_file(example_song, tmp_path / "a.ogg", settings, write_report=False).output_path
    second = protect_file(example_song, tmp_path / "b.ogg", settings, write_report=False).output_path
    assert first.read_bytes() == second.read_bytes()


def test_silent_input_is_copied_through_with_a_warning(tmp_path):
    silent = tmp_path / "silence.flac"
    soundfile.write(silent, np.zeros((44_100, 2)), 44_100, subtype="PCM_16")
    with pytest.warns(UserWarning, match="silent; nothing needed protecting"):
        result = protect_file(silent, tmp_path / "out.flac", QUICK)
    assert result.output_path.read_bytes() == silent.read_bytes()


def test_output_equal_to_input_is_refused_unless_overwrite(tmp_path, song_wav):
    copy = tmp_path / "song.wav"
    copy.write_bytes(song_wav.read_bytes())
    with pytest.raises(AudioFileError, match="song.wav"):
        protect_file(copy, copy, QUICK)
    assert copy.read_bytes() == song_wav.read_bytes()
    protect_file(copy, copy, QUICK, overwrite=True, write_report=False)
    assert copy.read_bytes() != song_wav.read_bytes()


def test_stems_get_their_own_noise_and_keep_their_length(tmp_path):
    rate = 22_050
    time = np.arange(2 * rate) / rate
    bass = (0.4 * np.sin(2 * math.pi * 110 * time)).astype(np.float32)
    flute = (0.2 * np.sin(2 * math.pi * 880 * time) * (time % 0.5 < 0.4)).astype(np.float32)
    paths = []
    for name, samples in (("bass", bass), ("flute", flute)):
        paths.append(tmp_path / f"{name}.wav")
        soundfile.write(paths[-1], samples, rate, subtype="FLOAT")
    results = protect_stems(paths, tmp_path / "out", QUICK)
    for path, result in zip(paths, results):
        clean, protected = read_audio(path).samples, read_audio(result.output_path).samples
        assert protected.shape == clean.shape and np.abs(protected - clean).max() > 0
        assert result.report["stems"] == [str(p) for p in paths]
    # each stem's noise follows its own dominant note: bass noise at 110 Hz, flute noise at 880 Hz
    for result, frequency_hz in zip(results, (110, 880)):
        noise = read_audio(result.output_path).samples[0] - read_audio(result.input_path).samples[0]
        spectrum = np.abs(np.fft.rfft(noise))
        assert abs(np.argmax(spectrum) * rate / len(noise) - frequency_hz) < 5


def test_white_box_protects_against_a_named_checkpoint(tmp_path, song_wav):
    checkpoint, curve = train_audio_model([song_wav], tmp_path / "target.pt", preset="tiny", steps=5)
    assert len(curve) == 5
    settings = replace(QUICK, mode="whitebox", model_checkpoint=checkpoint)
    result = protect_file(song_wav, tmp_path / "out.wav", settings, write_report=False)
    assert result.report["surrogates"] == ["ar-transformer"]
    with pytest.raises(ModelError, match="missing.pt"):
        protect_file(song_wav, tmp_path / "o.wav", replace(settings, model_checkpoint=tmp_path / "missing.pt"))
    assert not (tmp_path / "o.wav").exists()


def test_masked_cloak_and_preview(tmp_path, song_wav):
    settings = replace(QUICK, cloak="masked", preview_s=1.5)
    result = protect_file(song_wav, tmp_path / "preview.wav", settings, write_report=False)
    audio = read_audio(result.output_path)
    assert audio.num_frames == round(1.5 * audio.sample_rate_hz)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_songs_optimised_together_each_get_noise_of_their_own_within_the_budget(tmp_path, example_song, device):
    from harmonycloak.flows.audio.protect import protect_songs, read_song_to_protect

    settings = replace(QUICK, device=device)
    audio = read_audio(example_song)
    rate = audio.sample_rate_hz
    paths = []
    for index, (start_s, seconds) in enumerate([(5.0, 3.0), (12.0, 2.0)]):  # two excerpts of different lengths
        excerpt = replace(audio, samples=audio.samples[:, round(start_s * rate) : round((start_s + seconds) * rate)],
                          format=None)
        paths.append(write_audio(excerpt, tmp_path / f"song{index}.wav"))
    songs = [read_song_to_protect(path, tmp_path / f"out{index}.wav", settings) for index, path in enumerate(paths)]
    results = protect_songs(songs, settings, picture=False)
    for path, result in zip(paths, results):
        original, protected = read_audio(path).samples, read_audio(result.output_path).samples
        assert protected.shape == original.shape and np.abs(protected - original).max() > 0
        assert result.report["noise_to_mask_ratio_db"]["fraction_above_0db"] < 0.01
        assert result.report["songs_optimised_together"] == 2 and result.report["device"].startswith(device)
        # min-min lowered each song's own loss under the surrogates that learnt both songs
        loss = result.report["surrogate_loss_after"]
        assert loss["protected"] < loss["clean"]
    noises = [read_audio(r.output_path).samples - read_audio(p).samples for p, r in zip(paths, results)]
    assert not np.allclose(noises[0][:, : noises[1].shape[1]], noises[1])
