"""The threat models' music in one file: it comes back sample for sample, only to a suite whose
data it is, and a run reads it instead of the corpus."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from harmonycloak.bench.unlearnability import benchmark
from harmonycloak.bench.unlearnability.bundle import load_threat_data_bundle, needs_heldout, save_threat_data
from harmonycloak.bench.unlearnability.data import Album, Song
from harmonycloak.bench.unlearnability.suites import get_suite
from harmonycloak.bench.unlearnability.threat_experiment import BenchData, corpus_size
from harmonycloak.errors import SettingsError
from harmonycloak.settings import WORKING_RATE_HZ


def _song(name: str, artist: str, seed: int, seconds: float) -> Song:
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * WORKING_RATE_HZ)) / WORKING_RATE_HZ
    frequency = rng.choice([220.0, 277.2, 329.6, 440.0], size=8)[(time * 4).astype(int) % 8]
    samples = (0.3 * np.sin(2 * np.pi * frequency * time) + 1e-3 * rng.standard_normal(len(time))).astype(np.float32)
    return Song(name, artist, "recording", samples)


def synthetic_data(suite) -> BenchData:
    """Music shaped as `load_threat_data(suite)` makes it: the album, the T1 corpus, references, held-out songs."""
    seconds = suite.data.song_s
    released = [_song(f"blupi/{i}.ogg#0", "planetblupi", i, seconds) for i in range(2)]
    unreleased = [_song("blupi/9.ogg#0", "planetblupi", 9, seconds)]
    others = [_song(f"other/{i}", f"artist{i % 3}", 100 + i, seconds) for i in range(16)]
    count = corpus_size(suite.threats.scratch_released, suite.protected_fraction)
    references = torch.from_numpy(np.stack([song.samples[:WORKING_RATE_HZ] for song in others[:4]]))
    return BenchData(Album(released, unreleased), others[:count], references, others[count:])


def test_the_music_comes_back_sample_for_sample(tmp_path):
    suite = replace(get_suite("smoke", parts=("mimicry",)), families_for_threats=("ar-transformer",))
    assert needs_heldout(suite)  # smoke's T2 measures what its models generate
    data = synthetic_data(suite)
    path = save_threat_data(data, suite, tmp_path / "music")
    assert path.name == "music"  # the name asked for, not music.npz
    back = load_threat_data_bundle(path, suite)
    for mine, theirs in [(data.album.released, back.album.released), (data.album.unreleased, back.album.unreleased),
                         (data.corpus, back.corpus), (data.heldout, back.heldout)]:
        assert [(s.name, s.artist, s.kind) for s in mine] == [(s.name, s.artist, s.kind) for s in theirs]
        for song, again in zip(mine, theirs):
            assert again.samples.dtype == np.float32 and np.array_equal(song.samples, again.samples)
    assert torch.equal(back.references, data.references) and back.midi_album is None


def test_a_bundle_is_refused_by_a_suite_of_other_data_or_that_needs_what_it_lacks(tmp_path):
    scratch = replace(get_suite("smoke", parts=("scratch",)), families_for_threats=("ar-transformer",))
    assert not needs_heldout(scratch)
    path = save_threat_data(synthetic_data(scratch), scratch, tmp_path / "t1.npz")
    assert load_threat_data_bundle(path, scratch).heldout == []  # T1 alone reads no held-out songs
    other_album = replace(scratch, album=replace(scratch.album, released_tracks=3))
    with pytest.raises(SettingsError, match="made for other data"):
        load_threat_data_bundle(path, other_album)
    mimicry = replace(get_suite("smoke", parts=("scratch", "mimicry")), families_for_threats=("ar-transformer",))
    with pytest.raises(SettingsError, match="no held-out songs"):
        load_threat_data_bundle(path, mimicry)
    midi = get_suite("smoke", parts=("mimicry",))  # its families include MuseGAN and SymphonyNet
    with pytest.raises(SettingsError, match="no MIDI pieces"):
        save_threat_data(synthetic_data(midi), midi, tmp_path / "t2.npz")
    with pytest.raises(SettingsError, match="no MIDI pieces"):
        load_threat_data_bundle(path, replace(midi, album=scratch.album))
    (tmp_path / "not.npz").write_bytes(b"not a bundle")
    with pytest.raises(SettingsError, match="not a benchmark data bundle"):
        load_threat_data_bundle(tmp_path / "not.npz", scratch)


def test_a_bundle_of_another_version_is_refused(tmp_path):
    suite = replace(get_suite("smoke", parts=("scratch",)), families_for_threats=("ar-transformer",))
    path = save_threat_data(synthetic_data(suite), suite, tmp_path / "t1.npz")
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    meta = json.loads(str(arrays.pop("meta")))
    np.savez(tmp_path / "old.npz", meta=np.array(json.dumps({**meta, "version": 0})), **arrays)
    with pytest.raises(SettingsError, match="version 0"):
        load_threat_data_bundle(tmp_path / "old.npz", suite)


def test_a_run_reads_the_bundle_and_never_the_corpus(tmp_path, monkeypatch):
    suite = get_suite("smoke", seeds=(0,), parts=("scratch",))
    path = save_threat_data(synthetic_data(suite), suite, tmp_path / "t1.npz")

    def no_corpus(suite):
        raise AssertionError("the corpus was read")

    monkeypatch.setattr(benchmark, "load_threat_data", no_corpus)
    document = benchmark.run_unlearnability("smoke", tmp_path / "report", seeds=(0,), parts=("scratch",),
                                            families=("ar-transformer",), methods=("positive-white-10db",),
                                            attacks=(), data_bundle=path, log=lambda *a: None)
    runs = document["threat_seed_results"][0]["runs"]
    assert {run["condition"] for run in runs} == {"unseen", "none", "positive-white-10db"}
    assert document["data"]["album"]["released"] == ["blupi/0.ogg#0", "blupi/1.ogg#0"]


def test_a_run_stopped_part_way_keeps_the_trainings_it_finished_for_combine(tmp_path, monkeypatch):
    from harmonycloak.bench.unlearnability import threat_experiment

    suite = get_suite("smoke", seeds=(0,), parts=("scratch",))
    path = save_threat_data(synthetic_data(suite), suite, tmp_path / "t1.npz")
    trained = []
    train = threat_experiment.train_attacker

    def stopped_at_the_third(*args, **kwargs):
        if len(trained) == 2:
            raise KeyboardInterrupt  # the machine's time ran out
        trained.append(train(*args, **kwargs))
        return trained[-1]

    monkeypatch.setattr(threat_experiment, "train_attacker", stopped_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_unlearnability("smoke", tmp_path / "report", seeds=(0,), parts=("scratch",),
                                     families=("ar-transformer",), methods=("positive-white-10db",), attacks=(),
                                     data_bundle=path, log=lambda *a: None)
    partial = tmp_path / "report" / "partial-seed-0.json"
    assert not (tmp_path / "report" / "results.json").exists()
    kept = json.loads(partial.read_text())["threat_seed_results"][0]["runs"]
    assert [run["condition"] for run in kept] == ["unseen", "none"]
    assert kept[1]["song_losses"] == trained[1].song_losses

    document = benchmark.combine_reports("smoke", [partial], tmp_path / "combined", log=lambda *a: None)
    assert [run["condition"] for run in document["threat_seed_results"][0]["runs"]] == ["unseen", "none"]
    assert document["data"]["album"]["released"] == ["blupi/0.ogg#0", "blupi/1.ogg#0"]

    monkeypatch.setattr(threat_experiment, "train_attacker", train)
    benchmark.run_unlearnability("smoke", tmp_path / "report", seeds=(0,), parts=("scratch",),
                                 families=("ar-transformer",), methods=("positive-white-10db",), attacks=(),
                                 data_bundle=path, log=lambda *a: None)
    assert (tmp_path / "report" / "results.json").exists() and not partial.exists()  # the whole run supersedes it
