"""`harmonycloak bench unlearnability`: load the songs, run every seed and ablation, write the report."""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass, field, replace
import sys
import time
from collections import Counter
from pathlib import Path

from harmonycloak.bench.unlearnability.data import load_album, load_songs
from harmonycloak.bench.unlearnability.experiment import run_ablations, run_seed, run_style
from harmonycloak.bench.unlearnability.midi import load_scores, run_midi_seed
from harmonycloak.bench.unlearnability.midi_mimicry import (
    KNOWN_MIDI_MIMICRY_METHODS,
    MIDI_MIMICRY_FAMILIES,
    load_midi_album,
    with_midi_controls,
)
from harmonycloak.bench.unlearnability.report import (
    current_environment,
    headline_table,
    protection_scores,
    results_document,
    write_report,
    write_results_json,
)
from harmonycloak.bench.unlearnability.releases import OTHER_MUSIC
from harmonycloak.bench.unlearnability.results import SeedResult
from harmonycloak.bench.unlearnability.suites import get_suite
from harmonycloak.bench.unlearnability.threat_experiment import (
    REFERENCE_CLIPS,
    BenchData,
    ThreatSeedResult,
    corpus_size,
    merge_seed_results,
    reference_clips,
    run_threat_seed,
)
from harmonycloak.bench.unlearnability.threats import ScratchSize, scratch_size_text
from harmonycloak.errors import SettingsError


def adjusted_suite(suite, jobs: int | None = None, methods: tuple[str, ...] | None = None,
                   families: tuple[str, ...] | None = None, strength: str | None = None,
                   scratch_preset: str | None = None, scratch_steps: int | None = None, eot: tuple[str, ...] = (),
                   attacks: tuple[str, ...] | None = None, device: str | None = None,
                   release_steps: int | None = None, bound_rule: str | None = None,
                   mimicry: dict | None = None, probe_steps: tuple[int, ...] | None = None,
                   scratch_learning_rate: float | None = None, scratch_sizes: tuple | None = None,
                   style_judged: tuple[str, ...] | None = None):
    """`suite` with the command line's replacements (see `run_unlearnability`): a T1 size, length or
    learning rate given puts every family's T1 attackers at it; `scratch_sizes` (`threats.ScratchSize`)
    then sizes those it names otherwise."""
    from harmonycloak.bench.unlearnability.releases import with_controls

    if jobs is not None:
        suite = replace(suite, jobs=jobs)
    if methods:  # MIDI methods go to the MIDI families, the others to the audio ones
        midi = with_midi_controls(methods)
        audio = tuple(m for m in methods if m not in KNOWN_MIDI_MIMICRY_METHODS)
        if midi:
            suite = replace(suite, midi_mimicry=replace(suite.midi_mimicry, methods=midi))
        if audio or not midi:
            suite = replace(suite, threat_methods=with_controls(audio), mimicry_methods=(),
                            attacked_methods=tuple(m for m in suite.attacked_methods if m in with_controls(audio)))
    if families:
        suite = replace(suite, families_for_threats=families)
    if strength:
        suite = replace(suite, threat_cloak=replace(suite.threat_cloak, strength=strength))
    scratch = {name: value for name, value in (("steps", scratch_steps), ("learning_rate", scratch_learning_rate))
               if value}
    if scratch_preset or scratch:  # every family alike
        suite = replace(suite, threats=replace(suite.threats, scratch_sizes=(),
                                               scratch_preset=scratch_preset or suite.threats.scratch_preset,
                                               scratch=replace(suite.threats.scratch, **scratch)))
    if scratch_sizes is not None:
        suite = replace(suite, threats=replace(suite.threats, scratch_sizes=tuple(scratch_sizes)))
    if mimicry:
        suite = replace(suite, threats=replace(suite.threats, mimicry=replace(suite.threats.mimicry, **mimicry)))
    if probe_steps:
        suite = replace(suite, threats=replace(suite.threats, probe_steps=tuple(sorted(set(probe_steps)))))
    if eot:
        suite = replace(suite, threat_cloak=replace(suite.threat_cloak, eot=tuple(eot)))
    if release_steps:
        suite = replace(suite, threat_cloak=replace(suite.threat_cloak, pgd_steps=release_steps))
    if bound_rule:
        suite = replace(suite, threat_cloak=replace(suite.threat_cloak, bound_rule=bound_rule))
    if attacks is not None:
        suite = replace(suite, attacks=tuple(attacks), scratch_attacks=tuple(attacks))
    if device:
        suite = replace(suite, threats=replace(suite.threats, device=device))
    if style_judged is not None:
        suite = replace(suite, midi_mimicry=replace(suite.midi_mimicry, style_judged=tuple(style_judged)))
    return suite


def run_unlearnability(suite_name: str, out: Path, seeds: tuple[int, ...] | None = None, command: str | None = None,
                       suite=None, parts: tuple[str, ...] | None = None, jobs: int | None = None,
                       methods: tuple[str, ...] | None = None, families: tuple[str, ...] | None = None,
                       strength: str | None = None, scratch_preset: str | None = None,
                       scratch_steps: int | None = None, eot: tuple[str, ...] = (),
                       attacks: tuple[str, ...] | None = None, device: str | None = None,
                       data_bundle: Path | None = None, release_steps: int | None = None,
                       bound_rule: str | None = None, mimicry: dict | None = None,
                       probe_steps: tuple[int, ...] | None = None, scratch_learning_rate: float | None = None,
                       style_judged: tuple[str, ...] | None = None, log=print) -> dict:
    """Run a suite (or the given `suite` object) and write its report folder; returns the JSON document.

    `methods` and `families` replace the threat models' (a method's random control and "none"
    are added: a score needs them); `strength` replaces the strength the threat models' releases
    run at (a point on the curve of protection against audibility); `scratch_preset`,
    `scratch_steps` and `scratch_learning_rate` replace every family's T1 attacker size, training
    length and learning rate (larger models trained
    longer memorise their corpus: a wider seen/unseen gap); `eot` names the purifications the
    optimised releases are made to survive (`optim.eot`); `attacks` replace the purifications
    both threat models apply to the attacked methods (empty: none, no attacked columns); `device`
    where the attackers train ("auto": CUDA when present); `data_bundle` a file of the threat
    models' music written by `export_threat_data`, read instead of the corpus; `release_steps`
    the optimised releases' PGD steps per round (their optimisation effort); `bound_rule` the
    masked cloak's bound rule (`cloak.masked`) of its releases and of their random control;
    `mimicry` replaces fields of T2's fine-tuning recipe (`optim.finetune.FinetuneRecipe`: kind,
    steps, learning_rate: an attacker who trains otherwise or longer); `probe_steps` the steps
    of either threat's training after which every attacker is measured too (how an effect grows
    or fades as it trains on); `style_judged` the MIDI families whose written music the style
    measures judge (`MidiMimicrySpec.style_judged`)."""
    import torch

    suite = adjusted_suite(suite or get_suite(suite_name, seeds, parts), jobs, methods, families, strength,
                           scratch_preset, scratch_steps, eot, attacks, device, release_steps, bound_rule,
                           mimicry, probe_steps, scratch_learning_rate, style_judged=style_judged)
    command = command or " ".join(shlex.quote(a) for a in ["harmonycloak", *sys.argv[1:]])
    threads = torch.get_num_threads()
    if suite.torch_threads:
        torch.set_num_threads(suite.torch_threads)
    environment = current_environment()  # the commit the run starts from
    if suite.training.preset != "tiny" and not torch.cuda.is_available():
        log(f"suite {suite.name}: default-size models and no CUDA device; on a CPU this takes days, not hours")
    started = time.perf_counter()
    try:
        audio, midi = "audio" in suite.parts, "midi" in suite.parts and suite.midi is not None
        style = "style" in suite.parts and suite.measures is not None and suite.measures.style
        songs = load_songs(suite.data) if audio or style else []
        pieces = load_scores(suite.midi) if midi else []
        log(f"{len(songs)} songs: {dict(Counter(s.artist for s in songs))}; {len(pieces)} MIDI pieces")
        bench_data = threat_data(suite, data_bundle) if suite.threat_models else None
        if bench_data is not None:
            log(f"threat models: {len(bench_data.album.released)} released and {len(bench_data.album.unreleased)} "
                f"unreleased clips of {suite.album.artist}; a corpus of {len(bench_data.corpus)} other songs")
            if bench_data.midi_album is not None:
                log(f"MIDI mimicry: {len(bench_data.midi_album.released)} released and "
                    f"{len(bench_data.midi_album.unreleased)} unreleased Bach pieces")
        judge = None
        if (audio or style) and suite.measures is not None:
            from harmonycloak.bench.unlearnability.measures import GeneratedMeasures

            judge = GeneratedMeasures(suite.measures)
            log(f"style classifier: held-out accuracy {judge.classifier_report['held_out_accuracy']:.2f}")
        data_summary = _data_summary(suite, songs, pieces, bench_data)
        if judge is not None:
            data_summary["style_classifier"] = {k: v for k, v in judge.classifier_report.items()
                                                if k in ("held_out_accuracy", "balanced_accuracy", "classes")}
        results = []
        partial = PartialResults(Path(out), results_document(command, suite, 0.0, data_summary, environment, [], []))
        threat_results = run_threat_seeds(suite, bench_data, log, on_run=partial) if bench_data is not None else []
        for seed in suite.seeds:
            log(f"seed {seed}")
            if audio:
                results.append(run_seed(suite, songs, seed, judge=judge, log=log))
                results.extend(run_ablations(suite, songs, seed, main=results[-1], log=log))
            if style:
                results.append(run_style(suite, songs, seed, judge, log=log))
            if midi:
                results.append(run_midi_seed(suite.midi, pieces, seed, suite.protected_fraction, log=log))
        wall_s = time.perf_counter() - started
        document = write_report(Path(out), suite, results, command, wall_s, data_summary, environment, threat_results)
        partial.remove(suite.seeds)  # the whole run's results.json holds what they held
    finally:
        torch.set_num_threads(threads)
    log("")
    log(f"Unlearnability, suite {suite.name}, seeds {list(suite.seeds)}, {wall_s / 60:.1f} min — {command}")
    if results:
        log(headline_table(protection_scores(results), suite.all_families))
    if threat_results:
        log((Path(out) / "summary.md").read_text().split("## Protection against attackers", 1)[1].split("\n", 1)[1])
    log(f"report: {Path(out) / 'summary.md'}")
    return document


def _data_summary(suite, songs: list, pieces: list, bench_data: BenchData | None) -> dict:
    """What a run read, for its report: the paper part's songs and pieces, the threat models' clips."""
    summary = {"songs": len(songs), "by_artist": dict(Counter(s.artist for s in songs)),
               "names": [s.name for s in songs], "midi_pieces": [p[0] for p in pieces]}
    if bench_data is not None:
        summary["album"] = {"artist": suite.album.artist, "released_tracks": suite.album.released_tracks,
                            "unreleased_tracks": suite.album.unreleased_tracks,
                            "released": [s.name for s in bench_data.album.released],
                            "unreleased": [s.name for s in bench_data.album.unreleased]}
        summary["corpus_songs"] = len(bench_data.corpus)
        summary["corpus"] = [s.name for s in bench_data.corpus]
        if bench_data.midi_album is not None:
            summary["midi_album"] = {"composer": "bach",
                                     "released": [name for name, _ in bench_data.midi_album.released],
                                     "unreleased": [name for name, _ in bench_data.midi_album.unreleased]}
    return summary


@dataclass(frozen=True)
class PartialResults:
    """After every attacker run, one seed's threat-model results so far as a results document
    `out/partial-seed-N.json` that `--combine` reads: a run stopped part-way (a lent machine's
    time running out) keeps every training it finished. `header`: the run's results document
    without results (`wall_s` becomes the time since `started_s`, epoch seconds)."""

    out: Path
    header: dict
    started_s: float = field(default_factory=time.time)

    def path(self, seed: int) -> Path:
        return self.out / f"partial-seed-{seed}.json"

    def __call__(self, result: ThreatSeedResult) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        write_results_json(self.path(result.seed), {**self.header, "wall_s": time.time() - self.started_s,
                                                    "threat_seed_results": [result.to_json()]})

    def remove(self, seeds: tuple[int, ...]) -> None:
        """Remove the files of `seeds` (another run's, of other seeds, stay)."""
        for seed in seeds:
            self.path(seed).unlink(missing_ok=True)


def run_threat_seeds(suite, data: BenchData, log=print, run_seed=run_threat_seed, on_run=None) -> list[ThreatSeedResult]:
    """`run_seed(suite, data, seed)` for every seed of the suite (the threat models' by default),
    `suite.jobs` at a time in worker processes of one thread each (a seed's result does not
    depend on how many run beside it). `run_seed` must be a module-level function; `on_run`,
    when given, is passed on to it (picklable: it travels to the workers)."""
    if on_run is not None:
        run_seed = functools.partial(run_seed, on_run=on_run)
    if suite.jobs <= 1 or len(suite.seeds) == 1:
        return [run_seed(suite, data, seed, log=log) for seed in suite.seeds]
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(min(suite.jobs, len(suite.seeds)), _one_thread) as pool:
        return pool.starmap(run_seed, [(suite, data, seed) for seed in suite.seeds])


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def threat_data(suite, data_bundle: Path | None = None) -> BenchData:
    """The threat models' music: from the bundle when one is given, else from the corpus."""
    if data_bundle is None:
        return load_threat_data(suite)
    from harmonycloak.bench.unlearnability.bundle import load_threat_data_bundle

    return load_threat_data_bundle(data_bundle, suite)


def export_threat_data(suite, path: Path, log=print) -> Path:
    """Write the threat models' music of `suite` to `path` for a machine without the corpus
    (`run_unlearnability(..., data_bundle=path)` there)."""
    from harmonycloak.bench.unlearnability.bundle import save_threat_data

    if not suite.threat_models:
        raise SettingsError("--export-data writes the threat models' music: ask for --parts scratch and/or mimicry")
    written = save_threat_data(load_threat_data(suite), suite, path)
    log(f"threat models' music of suite {suite.name}: {written} ({written.stat().st_size / 1e6:.1f} MB)")
    return written


def load_threat_data(suite) -> BenchData:
    """The album of the suite's artist, a corpus of other songs making its released clips
    `suite.protected_fraction` of the T1 training set, the reference clips, and the songs of the
    same draw left out of the corpus (held-out music)."""
    import numpy as np

    album = load_album(suite.album, suite.data)
    others = load_songs(suite.threat_corpus)
    count = corpus_size(suite.threats.scratch_released or len(album.released), suite.protected_fraction)
    needed = count + (len(album.released) if any(OTHER_MUSIC in suite.methods_for(threat)
                                                 for threat in suite.threat_models) else 0)
    if len(others) < needed:  # before any training: other music released in place of the album comes from the rest
        raise SettingsError(f"the threat models' corpus holds {len(others)} songs; the suite needs {needed}")
    mixed = [others[i] for i in np.random.default_rng(0).permutation(len(others))]  # a fixed mix of composers and recordings
    midi_album = (load_midi_album(suite.midi_mimicry) if "mimicry" in suite.threat_models
                  and any(family in MIDI_MIMICRY_FAMILIES for family in suite.families_for_threats) else None)
    return BenchData(album, mixed[:count], reference_clips(mixed, REFERENCE_CLIPS), mixed[count:], midi_album)


def with_methods_ran(suite, threat_results: list[ThreatSeedResult]):
    """`suite` with every method and family its threat-model runs measured (a run's `--methods` and
    `--families` beyond the suite's own) added after its own, so that a combined report keeps them
    (the MIDI families' methods to the MIDI methods)."""
    from harmonycloak.bench.unlearnability.releases import split_method

    families = tuple(dict.fromkeys(run.family for result in threat_results for run in result.runs
                                   if run.family not in suite.families_for_threats))
    if families:
        suite = replace(suite, families_for_threats=suite.families_for_threats + families)

    ran = [(run.family in MIDI_MIMICRY_FAMILIES, run.threat, run.condition) for result in threat_results
           for run in result.runs if split_method(run.condition)[0] not in ("base", "unseen")]
    listed = {threat: set(suite.methods_for(threat)) for threat in ("scratch", "mimicry")}
    # a method that ran in a threat the suite does not give it (T2's own methods run in T1 too) joins both
    extra = tuple(dict.fromkeys(method for midi, threat, method in ran if not midi and method not in listed[threat]))
    extra_midi = tuple(dict.fromkeys(method for midi, _, method in ran
                                     if midi and method not in suite.midi_mimicry.methods))
    if extra:
        suite = replace(suite, threat_methods=suite.threat_methods + extra,
                        mimicry_methods=tuple(m for m in suite.mimicry_methods if m not in extra))
    if extra_midi:
        suite = replace(suite, midi_mimicry=replace(suite.midi_mimicry, methods=suite.midi_mimicry.methods + extra_midi))
    return suite


def training_of(documents: list[dict], threat: str) -> tuple | None:
    """How the results documents that ran `threat` trained its attackers: T1 (preset, steps, learning
    rate, the families' own sizes as `threats.ScratchSize`s), T2 (kind, steps, learning rate); None when
    none ran it.

    T1 is read family by family: runs of one family must agree, runs of different families need not
    (a run of the codec LM joins one of the transformer though the transformer has its own size).
    The size most families share becomes the suite's; the others are their own `ScratchSize`s.

    Raises:
        SettingsError: the runs trained that threat's (one family's, in T1) attackers at different sizes
            or lengths.
    """
    sizes: dict[str | None, set] = {}
    for document in documents:
        threats = document["suite_settings"]["threats"]
        recipe = threats[threat]
        own = {size["family"]: ScratchSize(**size) for size in threats.get("scratch_sizes", ())}
        for result in document.get("threat_seed_results", []):
            for run in result["runs"]:
                if run["threat"] != threat:
                    continue
                if threat != "scratch":
                    sizes.setdefault(None, set()).add((recipe["kind"], recipe["steps"], recipe["learning_rate"]))
                    continue
                size = own.get(run["family"], ScratchSize(run["family"], threats["scratch_preset"], recipe["steps"],
                                                           recipe["learning_rate"]))
                sizes.setdefault(run["family"], set()).add(size)
    label = "T1" if threat == "scratch" else "T2"
    for family, found in sizes.items():
        if len(found) > 1:
            named = f" of {family}" if family else ""
            words = sorted(scratch_size_text(size) if family else str(size) for size in found)
            raise SettingsError(f"the runs trained {label}'s attackers{named} at different sizes or lengths "
                                f"({'; '.join(words)}); combine runs of one size")
    if not sizes:
        return None
    if threat != "scratch":
        return next(iter(sizes[None]))
    chosen = [next(iter(found)) for found in sizes.values()]
    # a size that sets nothing but the preset and pace equals the ScratchSize of those alone (every other field
    # at its default), whatever fields ScratchSize gains
    plain = [(size.preset, size.steps, size.learning_rate) for size in chosen
             if size == ScratchSize(size.family, size.preset, size.steps, size.learning_rate)]
    if not plain:  # every family ran at its own size: the suite's size stays that of the runs' suite
        threats = next(d["suite_settings"]["threats"] for d in documents if d.get("threat_seed_results"))
        plain = [(threats["scratch_preset"], threats["scratch"]["steps"], threats["scratch"]["learning_rate"])]
    base = max(set(plain), key=plain.count)
    others = tuple(size for size in sorted(chosen, key=lambda size: size.family)
                   if size != ScratchSize(size.family, *base))
    return (*base, others)


def combine_reports(suite_name: str, result_files: list[Path], out: Path, suite=None, log=print) -> dict:
    """One report from several runs of one suite's parts (e.g. `--parts audio` and `--parts style midi`).

    Every run's seed results are kept as they are; the commands are listed, wall times added.
    """
    import json

    documents = []
    for path in result_files:
        try:
            documents.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as error:
            raise SettingsError(f"cannot read the results ({error})", path) from error
    if any(d["suite"] != suite_name for d in documents):
        raise SettingsError(f"every results file must come from the suite '{suite_name}'")
    results = [SeedResult.from_json(r) for d in documents for r in d["seed_results"]]
    threat_results = merge_seed_results([ThreatSeedResult.from_json(r) for d in documents
                                         for r in d.get("threat_seed_results", [])])
    kinds = {r.kind for r in results}
    threat_parts = tuple(threat for threat in ("scratch", "mimicry")
                         if any(run.threat == threat for result in threat_results for run in result.runs))
    parts = threat_parts + tuple(p for p in ("audio", "style", "midi")
                  if (p == "audio" and any(r.tag == "main" and r.kind == "audio" for r in results))
                  or (p == "style" and any(r.tag.startswith("style=") for r in results))
                  or (p == "midi" and "midi" in kinds))
    suite = with_methods_ran(replace(suite or get_suite(suite_name), parts=parts), threat_results)
    scratch_size, mimicry_size = training_of(documents, "scratch"), training_of(documents, "mimicry")
    if scratch_size is not None:  # the report names the T1 size the runs trained, not the suite's default
        suite = adjusted_suite(suite, scratch_preset=scratch_size[0], scratch_steps=scratch_size[1],
                               scratch_learning_rate=scratch_size[2], scratch_sizes=scratch_size[3])
    if mimicry_size is not None:  # and T2's recipe
        suite = adjusted_suite(suite, mimicry=dict(zip(("kind", "steps", "learning_rate"), mimicry_size)))
    data: dict = {}
    for d in documents:
        for key, value in d["data"].items():
            if value and not data.get(key):
                data[key] = value
    data.setdefault("by_artist", {})
    data.setdefault("songs", 0)
    command = " ; ".join(d["command"] for d in documents)
    environment = {**current_environment(), "combined_from": [d.get("environment") for d in documents],
                   "note": "git_commit is the combining step's; each run's own is in combined_from (null: not recorded)"}
    document = write_report(Path(out), suite, results, command, sum(d["wall_s"] for d in documents), data, environment,
                            threat_results)
    if results:
        log(headline_table(protection_scores(results), suite.all_families))
    return document
