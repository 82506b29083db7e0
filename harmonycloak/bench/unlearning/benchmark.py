"""`harmonycloak bench unlearning`: load the threat benchmark's songs, run every seed, write the report.

    unlearning.md                the tables and plain verdicts
    unlearning-headline.json     PS_forget per threat, family and method, in the shape of the
                                 unlearnability headline (`unlearnability.headline`)
    unlearning-results.json      every run's per-song losses, curve and seconds, with its seed

The file names leave the threat benchmark's own report (summary.md, headline.json) in the same
folder untouched.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from harmonycloak.bench.unlearnability.benchmark import load_threat_data, run_threat_seeds
from harmonycloak.bench.unlearnability.releases import PRODUCT_DEFAULT, default_settings
from harmonycloak.bench.unlearnability.report import _finite
from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
from harmonycloak.bench.unlearnability.threats import scratch_sizes_text
from harmonycloak.bench.unlearning.experiment import run_unlearning_seed
from harmonycloak.bench.unlearning.suites import get_unlearning_suite

REPORT, HEADLINE, RESULTS = "unlearning.md", "unlearning-headline.json", "unlearning-results.json"


def run_unlearning(suite_name: str, out: Path, seeds: tuple[int, ...] | None = None, command: str | None = None,
                   suite=None, jobs: int | None = None, methods: tuple[str, ...] | None = None,
                   families: tuple[str, ...] | None = None, log=print) -> dict:
    """Run a suite (or the given `suite` object) and write its report into `out`; returns the JSON document.

    `methods` (unlearning methods or cloak release methods) and `families` replace the suite's."""
    import torch

    from harmonycloak.bench.unlearning.methods import METHODS

    suite = suite or get_unlearning_suite(suite_name, seeds)
    if jobs is not None:
        suite = replace(suite, jobs=jobs)
    if methods:
        suite = replace(suite, methods=tuple(m for m in methods if m in METHODS),
                        cloaks=tuple(m for m in methods if m not in METHODS))
    if families:
        suite = replace(suite, families=tuple(families), scratch_families=None)
    command = command or " ".join(shlex.quote(a) for a in ["harmonycloak", *sys.argv[1:]])
    from harmonycloak.bench.unlearnability.report import current_environment

    threads = torch.get_num_threads()
    if suite.torch_threads:
        torch.set_num_threads(suite.torch_threads)
    environment = current_environment()
    started = time.perf_counter()
    try:
        data = load_threat_data(suite.threat)
        log(f"unlearning: {suite.threat.threats.scratch_released} clips of {suite.threat.album.artist} to forget; "
            f"T1 retains a corpus of {len(data.corpus)} songs, T2 the album's other "
            f"{len(data.album.released) - suite.threat.threats.scratch_released} released clips; "
            f"{min(suite.heldout_songs, len(data.heldout))} held-out songs")
        results = run_threat_seeds(suite, data, log, run_seed=run_unlearning_seed)
        wall_s = time.perf_counter() - started
        forget_count = suite.threat.threats.scratch_released
        data_summary = {"artist": suite.threat.album.artist, "forget": results[0].released_songs,
                        "retain_mimicry": [s.name for s in data.album.released[forget_count:]],
                        "unreleased": results[0].unreleased_songs, "corpus": [s.name for s in data.corpus],
                        "heldout": [s.name for s in data.heldout[: suite.heldout_songs]]}
        document = {"command": command, "suite": suite.name, "wall_s": wall_s,
                    "suite_settings": json.loads(json.dumps(asdict(suite), default=str)),
                    "environment": environment, "data": data_summary,
                    "seed_results": [result.to_json() for result in results]}
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / RESULTS).write_text(json.dumps(_finite(document), indent=1, default=str, allow_nan=False) + "\n")
        write_unlearning_report(Path(out), suite, results, document)
    finally:
        torch.set_num_threads(threads)
    log("")
    log(f"Unlearning, suite {suite.name}, seeds {list(suite.seeds)}, {wall_s / 60:.1f} min — {command}")
    log((Path(out) / REPORT).read_text().split("## Forgetting", 1)[-1])
    log(f"report: {Path(out) / REPORT}")
    return document


def write_unlearning_report(out: Path, suite, results: list[ThreatSeedResult], document: dict) -> None:
    """unlearning.md and unlearning-headline.json from the runs (`document`: what unlearning-results.json holds)."""
    from harmonycloak.bench.unlearnability.headline import build_headline, write_headline
    from harmonycloak.bench.unlearning.report import headline_threat_models, markdown_tables, score_table, verdicts

    environment, data = document["environment"], document["data"]
    commit = environment.get("git_commit") or "unknown"
    command, wall_s = document["command"], document["wall_s"]
    table = score_table(results, suite)
    out.mkdir(parents=True, exist_ok=True)
    write_headline(build_headline(suite.name, commit, headline_threat_models(table)), out / HEADLINE)
    md = [f"# Unlearning beside the cloak — suite `{suite.name}`", "",
          f"Command: `{command}`  ", f"Commit: {commit}; torch {environment['torch']}, CUDA {environment['cuda']}, "
          f"{environment['torch_threads']} thread(s).  ",
          f"Seeds: {', '.join(map(str, suite.seeds))}; wall time {wall_s / 60:.1f} min.", ""]
    md += [f"> {note}" for note in suite.notes] + ([""] if suite.notes else [])
    md += _setting(suite, data)
    md += ["## Forgetting, utility, cost and relearning, beside the cloak", ""]
    md += markdown_tables(table)
    md += ["### In plain words", ""]
    md += [f"- {line}" for line in verdicts(table, suite.relearn_steps)] or ["- (nothing to report)"]
    measured_fd = any("fd_generated" in run.measures for result in results for run in result.runs)
    md += ["", "### Not measured", ""]
    if not measured_fd:
        md.append("- The Fréchet distance of generated music in the zoo encoder's embedding: this run did not ask for "
                  "it (the suite's `generated`; the smoke and full suites measure it for the next-frame and diffusion "
                  "families).")
    else:
        md.append("- The codec LM's generated music (its sampler makes codec tokens, not the encoder's frames).")
    md += ["- No unlearning method has a random control; `beats_random_control` in the headline is false "
           "throughout. The cloaks' random controls were measured by the threat benchmark "
           "(docs/benchmark/standard/summary.md).", ""]
    (out / REPORT).write_text("\n".join(md))


def report_from_results(results_file: Path, out: Path, suite=None) -> None:
    """Write the report again from an earlier run's unlearning-results.json (e.g. after changing the report)."""
    document = json.loads(Path(results_file).read_text())
    results = [ThreatSeedResult.from_json(values) for values in document["seed_results"]]
    suite = suite or get_unlearning_suite(document["suite"], tuple(r.seed for r in results))
    write_unlearning_report(Path(out), suite, results, document)


def _setting(suite, data: dict) -> list[str]:
    spec, cloak = suite.threat.threats, suite.threat.threat_cloak
    default_clause = ""
    if PRODUCT_DEFAULT in suite.cloaks:  # what the release of `default` runs (the seed changes none of it)
        default = default_settings(0, cloak)
        default_clause = (f": `{PRODUCT_DEFAULT}` is what `protect` does to audio when asked nothing (the "
                          f"{default.cloak} cloak, objective {default.objective}, at its own effort: "
                          f"{default.pgd_steps} PGD steps, {default.max_rounds} round); the others")
    scratch, mimicry = suite.recipe("scratch"), suite.recipe("mimicry")
    forget_count, retained = len(data["forget"]), len(data["retain_mimicry"])
    return [
        "## The setting", "",
        f"A musician ({suite.threat.album.artist}) has {forget_count} clips of {suite.threat.data.song_s} s (those of the album's "
        f"first released tracks) in a model's training data and wants them out. Two ways: **unlearning** "
        f"after training (the model owner runs a method), or the **cloak** before release (the model trains on the "
        f"cloaked clips). Both are scored on the clean clips against the same two models of each seed: the original "
        f"(trained with the clips, PS 0) and the gold standard retrained without them (PS 1):", "",
        "    PS = (L_after − L_original) / (L_retrained − L_original)", "",
        f"- T1 (from scratch): attackers from random weights, {scratch_sizes_text(spec)}, on the clips and a "
        f"corpus of {len(data['corpus'])} other songs (the retain "
        f"set); the threat benchmark's `none` and `unseen` runs. Unlearning: {scratch.steps} Adam steps at "
        f"{scratch.learning_rate:g}, batches of {scratch.batch_segments}.",
        f"- T2 (mimicry): the zoo model fine-tuned ({spec.mimicry.steps} steps at {spec.mimicry.learning_rate:g}, "
        f"with augmentation) on the album's {forget_count + retained} released clips, the clips among them; the "
        f"other {retained} are the retain set, and the gold standard is the base "
        f"fine-tuned on them alone. PS also on the artist's {len(data['unreleased'])} unreleased clips. "
        f"Unlearning: {mimicry.steps} Adam steps at {mimicry.learning_rate:g}.",
        "- Methods: gradient ascent on the clips; ascent + descent on the retain set; ascent + KL to the original "
        "model on the retain set (for the next-frame models: the mean squared distance of the two models' predicted "
        "frames, the KL of their unit-variance Gaussians up to ½; for diffusion the distance of their velocity "
        f"predictions at the same draws); NPO with β = {mimicry.npo_beta:g} per relative loss change (the "
        "log-likelihood ratio expressed through the losses relative to the original's, so NPO starts as gradient "
        "ascent and slows once the loss is ~1/β above the original's); fine-tuning on the retain set alone; "
        "retraining without the clips. Learning rates chosen on seed 0 of ar-transformer so that gradient ascent "
        "ends near PS 1 there; ten times higher, every ascent method overshoots tenfold.",
        f"- Cloaks: {', '.join(f'`{name}`' for name in suite.cloaks)}, released by the threat benchmark's code "
        f"at {cloak.strength} strength{default_clause} at the benchmark's effort ({cloak.pgd_steps} PGD steps, "
        f"{cloak.max_rounds} round, bag of {cloak.bag_size}). The attacker trains on the retain set and the "
        "cloaked clips with the same seed.",
        f"- Utility: Δ loss on the first retained songs and on {len(data['heldout'])} held-out "
        f"songs in no training set, against the original. Relearning attack: {suite.relearn_steps} steps of the "
        "attacker's recipe on the retain set, then PS again. Seconds: unlearning alone (methods), training "
        "(retraining), protecting the clips (cloaks: the musician's side), on one CPU thread.",
        f"- Intervals: 95 % hierarchical bootstraps over {len(suite.seeds)} paired seeds and the songs (with 3 seeds "
        "they are optimistic). unlearning-headline.json holds the PS values in the unlearnability headline's shape.",
        ""]
