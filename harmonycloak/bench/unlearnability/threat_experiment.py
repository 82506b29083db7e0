"""One seed of the threat-model benchmark: release the album under every method, train every
attacker on it, measure what each learned of the clean songs.

For a seed and an attacker family:

  scratch (T1)   a model trained from random weights on a corpus of other music in which the
                 artist's released songs make `fraction` of the songs:
                   none      the released songs as they are (the clean reference, L_clean)
                   unseen    the corpus without them (L_unseen: what "never learnt" looks like)
                   METHOD    the released songs replaced by their protected versions
  mimicry (T2)   the family's pretrained zoo model fine-tuned on the released songs alone:
                   base      not fine-tuned (L_base: the model before it saw the artist)
                   none      fine-tuned on the songs as they are (L_ft_clean)
                   METHOD    fine-tuned on their protected versions

A method may carry an attack (`"<method>+<attack>"`): the attacker purifies everything it
trains on before training (T1: the whole corpus), and the method is compared with
`none+<attack>` (and T1 with `unseen+<attack>`). Every condition of one seed starts from the
same weights and draws its crops from the same generator (`threats.train_attacker`).

Probes, each a list of songs whose per-song losses are kept:
  released     the clean originals of the released songs (what PS is computed on)
  unreleased   T2: the artist's tracks that were never released (style, not copies)
  others       T1: the first songs of the rest of the corpus (how well the corpus was learnt)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from harmonycloak.bench.unlearnability.data import Album, Song
from harmonycloak.bench.unlearnability.midi_mimicry import MIDI_MIMICRY_FAMILIES, MidiAlbum, run_midi_mimicry
from harmonycloak.bench.unlearnability.releases import Release, attacked, release, release_key, split_method
from harmonycloak.bench.unlearnability.threats import AttackerRun, train_attacker
from harmonycloak.settings import SEGMENT_S, WORKING_RATE_HZ

OTHERS_PROBED = 8  # T1: corpus songs measured beside the released ones
# Two runs' losses of one cell within this relative difference are one measurement: another CPU's
# kernels or thread count round the same training apart by about 1e-5, the contrastive fine-tune
# after MP3 by up to 1.2e-4; the least change of settings seen (the random control's noise made
# loudness-neutral) moved each cell's most-moved song by 1e-3 to 3.5e-3
SAME_CELL_RTOL = 5e-4
REFERENCE_CLIPS = 32  # other songs whose embeddings are a contrastive encoder's negatives when it is measured
ARTIST_CLASSIFIER_SEED = 0  # the style judge's initial weights: one judge for every seed


@dataclass
class BenchData:
    """The music of a seed-independent benchmark run."""

    album: Album  # the artist: released and unreleased songs
    corpus: list[Song]  # T1: the other music the released songs are mixed into (`corpus_size` of them)
    references: torch.Tensor  # (R, N) clips of other music: the contrastive encoder's negatives when measured
    heldout: list[Song] = field(default_factory=list)  # the rest of the draw the corpus came from: in no training set
    midi_album: MidiAlbum | None = None  # T2 of the MIDI families: the composer's pieces


@dataclass
class ReleaseRecord:
    """What releasing the album under one method (and attack) cost and changed, per family key."""

    audibility: dict[str, dict] = field(default_factory=dict)  # key → SNR, NMR p95, ΔLUFS, ViSQOL
    cost_s_per_song: dict[str, float] = field(default_factory=dict)  # key → seconds of protection per song
    summary: dict[str, dict] = field(default_factory=dict)  # key → what the optimiser reported


@dataclass
class ThreatSeedResult:
    """Everything one seed produced: the releases and every attacker run (JSON via `to_json`)."""

    seed: int
    released_songs: list[str]
    unreleased_songs: list[str]
    fraction: float  # T1: the released songs' share of the corpus
    releases: dict[str, ReleaseRecord] = field(default_factory=dict)
    runs: list[AttackerRun] = field(default_factory=list)
    artist_classifier: dict = field(default_factory=dict)  # T2's style judge, how well it knows the artist

    def to_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "ThreatSeedResult":
        values = dict(values)
        values["releases"] = {k: ReleaseRecord(**v) for k, v in values.get("releases", {}).items()}
        values["runs"] = [AttackerRun(**run) for run in values.get("runs", [])]
        return cls(**values)

    def run(self, threat: str, family: str, condition: str) -> AttackerRun | None:
        return next((r for r in self.runs if (r.threat, r.family, r.condition) == (threat, family, condition)), None)


def merge_seed_results(results: list[ThreatSeedResult]) -> list[ThreatSeedResult]:
    """One result per seed, in seed order, from the results of several runs (e.g. one of T1 and
    one of T2, or of the candidates named in separate runs): their runs and releases together.
    A cell two runs both measured is kept once (the first run's losses) when their losses agree
    within `SAME_CELL_RTOL` (the runs are deterministic for a seed, up to the machine's
    rounding), with the measures of both and the losses both measured on the way.

    Raises:
        SettingsError: two runs of one seed measured the same threat, family and condition with
            different losses (other settings), or released different songs.
    """
    from harmonycloak.errors import SettingsError

    merged: dict[int, ThreatSeedResult] = {}
    for result in results:
        into = merged.get(result.seed)
        if into is None:
            merged[result.seed] = ThreatSeedResult(result.seed, result.released_songs, result.unreleased_songs,
                                                   result.fraction, dict(result.releases), list(result.runs),
                                                   dict(result.artist_classifier))
            continue
        if (into.released_songs, into.unreleased_songs) != (result.released_songs, result.unreleased_songs):
            raise SettingsError(f"the runs of seed {result.seed} released different songs; they cannot be combined")
        for run in result.runs:
            kept = into.run(run.threat, run.family, run.condition)
            if kept is None:
                into.runs.append(run)
            elif same_losses(kept.song_losses, run.song_losses):
                kept.measures = {**run.measures, **kept.measures}
                kept.losses_at_step = {**run.losses_at_step, **kept.losses_at_step}
            else:
                raise SettingsError(f"seed {result.seed} has two runs of {run.threat} / {run.family} / "
                                    f"{run.condition} with different losses (other settings or code); combine "
                                    "runs of one suite and one strength")
        for method, record in result.releases.items():
            kept = into.releases.setdefault(method, ReleaseRecord())
            for measured in ("audibility", "cost_s_per_song", "summary"):
                getattr(kept, measured).update(getattr(record, measured))
        into.artist_classifier = into.artist_classifier or dict(result.artist_classifier)
    return [merged[seed] for seed in sorted(merged)]


def same_losses(first: dict[str, list[float]], second: dict[str, list[float]]) -> bool:
    """Whether two runs' losses per probe are one measurement (within `SAME_CELL_RTOL`, NaN alike)."""
    return first.keys() == second.keys() and all(
        len(first[probe]) == len(second[probe])
        and np.allclose(first[probe], second[probe], rtol=SAME_CELL_RTOL, atol=0.0, equal_nan=True)
        for probe in first)


def corpus_size(released: int, fraction: float) -> int:
    """How many other songs make the released ones `fraction` of the T1 corpus: round(r (1 − p) / p)."""
    return max(1, round(released * (1.0 - fraction) / fraction))


def reference_clips(songs: list[Song], count: int) -> torch.Tensor:
    """(count, segment) the first segment of the first `count` songs: the contrastive negatives."""
    length = round(SEGMENT_S * WORKING_RATE_HZ)
    return torch.from_numpy(np.stack([song.samples[:length] for song in songs[:count]]))


def artist_classifier(encoder, data: BenchData, window_s: float):
    """T2's style judge (`bench.generated.ArtistClassifier`): trained on the artist's released clips
    (clean) and the T1 corpus, by artist; measured on the artist's unreleased songs and the held-out
    songs of the same draw. The same judge for every seed (its own seed is fixed)."""
    from harmonycloak.bench.generated import train_artist_classifier

    artist = data.album.released[0].artist
    training = {artist: [song.samples for song in data.album.released]}
    held_out = {artist: [song.samples for song in data.album.unreleased]}
    for songs, by_artist in ((data.corpus, training), (data.heldout, held_out)):
        for song in songs:
            by_artist.setdefault(song.artist, []).append(song.samples)
    return train_artist_classifier(encoder, artist, training, held_out, window_s, seed=ARTIST_CLASSIFIER_SEED)


def conditions(threat: str, methods: tuple[str, ...]) -> list[str]:
    """Every run a threat needs for `methods`: the references first, then each method, each attack's
    references before its first attacked method."""
    out = ["base"] if threat == "mimicry" else ["unseen"]
    out.append("none")
    for method in methods:
        name, attack = split_method(method)
        if attack is not None:
            for reference in (f"none+{attack}",) + ((f"unseen+{attack}",) if threat == "scratch" else ()):
                if reference not in out:
                    out.append(reference)
        if method not in out:
            out.append(method)
    return out


def run_threat_seed(suite, data: BenchData, seed: int, log=print, on_run=None) -> ThreatSeedResult:
    """Every family × threat × condition of one seed (module docstring). `on_run(result)` is
    called with the result so far after every attacker run (a run stopped part-way keeps them)."""
    from harmonycloak.bench.unlearnability.experiment import audibility, jsonable

    album = data.album
    released_clean = [song.samples for song in album.released]
    unreleased = [song.samples for song in album.unreleased]
    scratch_count = suite.threats.scratch_released or len(released_clean)
    corpus = [song.samples for song in data.corpus]
    result = ThreatSeedResult(seed, [s.name for s in album.released], [s.name for s in album.unreleased],
                              scratch_count / (scratch_count + len(corpus)))
    # positive-other-music: the end of the held-out draw (in no training set; the reference clips are its start)
    other_music = [song.samples for song in data.heldout[-len(released_clean):]]
    releases: dict[str, Release] = {}  # "method|key" → the released songs (no attack)
    purified: dict[str, list[np.ndarray]] = {}  # "what|attack" → songs after the attack

    def released(method: str, family: str) -> list[np.ndarray]:
        name, attack = split_method(method)
        key = release_key(name, family)
        if f"{name}|{key}" not in releases:
            made = releases[f"{name}|{key}"] = release(name, released_clean, family, seed, suite.threat_cloak,
                                                       other_music)
            record = result.releases.setdefault(name, ReleaseRecord())
            record.audibility[key] = audibility(released_clean, made.songs, WORKING_RATE_HZ, suite.visqol)
            record.cost_s_per_song[key] = made.elapsed_s / len(released_clean)
            record.summary[key] = jsonable(made.summary)
            log(f"  seed {seed} release {name} [{key}]: {made.elapsed_s:.1f} s, "
                f"SNR {record.audibility[key]['snr_db']:.1f} dB")
        songs = releases[f"{name}|{key}"].songs
        if attack is None:
            return songs
        if f"{name}|{key}|{attack}" not in purified:
            purified[f"{name}|{key}|{attack}"] = attacked(songs, attack, seed)
            record = result.releases.setdefault(method, ReleaseRecord())
            record.audibility[key] = audibility(released_clean, purified[f"{name}|{key}|{attack}"], WORKING_RATE_HZ,
                                                suite.visqol)
            record.cost_s_per_song[key] = releases[f"{name}|{key}"].elapsed_s / len(released_clean)
        return purified[f"{name}|{key}|{attack}"]

    def corpus_after(attack: str | None) -> list[np.ndarray]:
        if attack is None:
            return corpus
        if f"corpus|{attack}" not in purified:
            purified[f"corpus|{attack}"] = attacked(corpus, attack, seed + 10_000)
        return purified[f"corpus|{attack}"]

    from harmonycloak.bench.generated import embedding_fd, generated_embeddings, has_sampler, lazy_zoo_encoder, song_embeddings

    zoo_encoder = lazy_zoo_encoder()

    @functools.cache
    def unreleased_embeddings() -> np.ndarray:
        return song_embeddings(zoo_encoder(), unreleased, suite.threat_generated.window_s)

    @functools.cache
    def judge():
        classifier = artist_classifier(zoo_encoder(), data, suite.threat_generated.window_s)
        result.artist_classifier = classifier.report
        return classifier

    def style_measure(threat: str, family: str):
        """T2: what the fine-tuned model generates, judged against the artist's unreleased songs:
        its FD to them, and the share of it the artist classifier gives the artist."""
        if threat != "mimicry" or suite.threat_generated is None or not has_sampler(family):
            return None

        def measure(model) -> dict:
            generated = generated_embeddings(model, zoo_encoder(), unreleased, suite.threat_generated, seed)
            if generated is None:
                return {}
            return {"fd_artist": embedding_fd(generated, unreleased_embeddings()), "artist_share": judge().share(generated)}

        return measure

    for family in suite.families_for_threats:
        if family in MIDI_MIMICRY_FAMILIES:
            if "mimicry" in suite.threat_models:
                runs, records = run_midi_mimicry(family, data.midi_album, suite.midi_mimicry, seed,
                                                 suite.threat_cloak.strength, log)
                result.runs.extend(runs)
                for method, record in records.items():
                    kept = result.releases.setdefault(method, ReleaseRecord())
                    for measured, value in record.items():
                        getattr(kept, measured)[release_key(method, family)] = value
                if on_run is not None:
                    on_run(result)
            continue
        for threat in suite.threat_models:
            mine = released_clean if threat == "mimicry" else released_clean[:scratch_count]
            probes = {"released": mine}
            if threat == "mimicry":
                probes["unreleased"] = unreleased
            else:
                probes["others"] = corpus[:OTHERS_PROBED]
            measure = style_measure(threat, family)
            for condition in conditions(threat, suite.methods_for(threat)):
                name, attack = split_method(condition)
                if name == "base":
                    training = []
                elif name == "unseen":
                    training = corpus_after(attack)
                elif threat == "scratch":
                    training = corpus_after(attack) + released(condition, family)[:scratch_count]
                else:
                    training = released(condition, family)
                run = train_attacker(threat, family, condition, training, probes, suite.threats, seed,
                                     data.references, measure)
                result.runs.append(run)
                log(f"  seed {seed} {threat} {family} {condition}: released {run.mean_loss('released'):.4f} "
                    f"({run.elapsed_s:.0f} s)")
                if on_run is not None:
                    on_run(result)
    return result
