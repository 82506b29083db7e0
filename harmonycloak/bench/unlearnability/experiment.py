"""One seed of the unlearnability benchmark, and its ablations: protect, train, measure.

The seed decides everything random: which songs are protected (a permutation of the songs;
the first ⌈p·n⌉ are protected, so smaller fractions are subsets of larger ones), the noise
of every method, the surrogates' and the attackers' initial weights, the batches.
Each seed gives a `results.SeedResult`; `report` turns them into tables and plots.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from harmonycloak.bench.unlearnability.baselines import (
    Protected,
    base_method,
    depends_on_target,
    mp3_round_trip,
    protect,
)
from harmonycloak.bench.unlearnability.data import Song
from harmonycloak.bench.unlearnability.results import SeedResult
from harmonycloak.bench.unlearnability.runs import train_attacker


def protected_indices(num_songs: int, fraction: float, seed: int) -> list[int]:
    """Indices of the protected songs: the first max(1, round(fraction · n)) of a seeded permutation."""
    order = np.random.default_rng(seed).permutation(num_songs)
    count = min(num_songs, max(1, round(fraction * num_songs)))
    return sorted(int(i) for i in order[:count])


def audibility(clean: list[np.ndarray], released: list[np.ndarray], sample_rate_hz: int, visqol: bool) -> dict:
    """SNR, loudness change and noise-to-mask ratio of released vs clean songs (all songs joined); ViSQOL optional."""
    from harmonycloak.metrics.perceptual import loudness_change_lu, noise_to_mask_ratio_stats_db, snr_db, visqol_mos

    original, changed = np.concatenate(clean)[None], np.concatenate(released)[None]
    result = {"snr_db": snr_db(original, changed), "loudness_change_lu": loudness_change_lu(original, changed, sample_rate_hz)}
    if np.array_equal(original, changed):
        result["nmr_p95_db"] = -math.inf
    else:
        result["nmr_p95_db"] = noise_to_mask_ratio_stats_db(original, changed, sample_rate_hz)["p95_db"]
    if visqol:
        result["visqol_mos"] = visqol_mos(clean[0][None], released[0][None], sample_rate_hz)
    return result


def run_seed(suite, songs: list[Song], seed: int, *, fraction: float | None = None, methods: tuple[str, ...] | None = None,
             families: tuple[str, ...] | None = None, cloak_spec=None, tag: str = "main",
             references: SeedResult | None = None, protected: list[int] | None = None, judge=None,
             log=print) -> SeedResult:
    """Every method × family for one seed: releases, audibility, cost, and attacker training runs.

    `references`: the result of an earlier `run_seed` with the same seed and fraction, whose
    clean and unseen runs are reused instead of trained again (they do not depend on the cloak).
    `protected`: the protected songs' indices instead of a seeded fraction (the style experiment).
    `judge` (`measures.GeneratedMeasures`): judges what the models of `suite.measures.conditions` generate.
    """
    fraction = suite.protected_fraction if fraction is None else fraction
    methods = suite.methods if methods is None else methods
    families = suite.families if families is None else families
    cloak_spec = suite.cloak if cloak_spec is None else cloak_spec
    rate = suite.data.sample_rate_hz
    chosen = protected_indices(len(songs), fraction, seed) if protected is None else sorted(protected)
    clean_protected = [songs[i].samples for i in chosen]
    others = [s.samples for i, s in enumerate(songs) if i not in chosen]
    result = SeedResult(seed, tag, "audio", fraction, cloak_spec.window_ms, [songs[i].name for i in chosen])
    device = _device(cloak_spec.device)
    if judge is not None:
        result.reference_measures = judge.reference(clean_protected, rate)

    def after(condition: str):
        if judge is None or condition not in suite.measures.conditions:
            return None
        return lambda model: judge.judge(model, clean_protected, rate, seed)

    def record(method: str, key: str, protected: Protected, released: list[np.ndarray]) -> None:
        entry = result.method(method)
        entry.audibility[key] = audibility(clean_protected, released, rate, suite.visqol)
        entry.cost_s_per_song[key] = protected.elapsed_s / len(clean_protected)
        entry.summary[key] = jsonable(protected.summary)

    shared: dict[str, Protected] = {}  # releases, by method and (for target-dependent methods) family
    for family in families:
        probes_base = {"protected_clean": clean_protected, "others_clean": others}
        reused = [run for run in (references.runs if references is not None else [])
                  if run.family == family and run.condition in ("clean", "unseen")]
        if references is not None and (references.seed, references.fraction) != (seed, fraction):
            raise ValueError("reference runs must come from the same seed and protected fraction")
        runs = reused if len(reused) == 2 else [
            train_attacker(family, "clean", others + clean_protected,
                           {**probes_base, "protected_as_trained": clean_protected}, suite.training, seed, rate, device,
                           after("clean")),
            train_attacker(family, "unseen", others, probes_base, suite.training, seed, rate, device, after("unseen"))]
        log(f"  seed {seed} {tag} {family}: clean {runs[0].final_loss['protected_clean']:.4f}, "
            f"unseen {runs[1].final_loss['protected_clean']:.4f}")
        for method in methods:
            name, mp3 = base_method(method)
            key = family if depends_on_target(name) else "any"
            if f"{name}|{key}" not in shared:
                shared[f"{name}|{key}"] = protected = protect(name, clean_protected, rate, family, seed, cloak_spec,
                                                                   suite.training)
                record(name, key, protected, protected.songs)
            if mp3 and f"{method}|{key}" not in shared:
                base = shared[f"{name}|{key}"]  # the MP3 trip is the attacker's step: the cost stays the method's
                shared[f"{method}|{key}"] = Protected([mp3_round_trip(s, rate) for s in base.songs], base.elapsed_s, {})
                record(method, key, shared[f"{method}|{key}"], shared[f"{method}|{key}"].songs)
            released = shared[f"{method}|{key}"].songs
            run = train_attacker(family, method, others + released,
                                 {**probes_base, "protected_as_trained": released}, suite.training, seed, rate, device,
                                 after(method))
            runs.append(run)
            log(f"  seed {seed} {tag} {family} {method}: {run.final_loss['protected_clean']:.4f}")
        result.runs.extend(runs)
    return result


def run_ablations(suite, songs: list[Song], seed: int, main: SeedResult | None = None,
                  log=print) -> list[SeedResult]:
    """Table 6 (window length) and Table 7 (protected fraction) for the suite's ablation family and method.

    The window runs share the protected set of the seed's main run (`main`), and reuse its
    clean and unseen attackers.
    """
    out = []
    for window_ms in suite.window_ablation_ms:
        out.append(run_seed(suite, songs, seed, methods=(suite.ablation_method,), families=(suite.ablation_family,),
                            cloak_spec=replace(suite.cloak, window_ms=window_ms), tag=f"window={window_ms:g}ms",
                            references=main, log=log))
    for fraction in suite.fraction_ablation:
        out.append(run_seed(suite, songs, seed, fraction=fraction, methods=(suite.ablation_method,),
                            families=(suite.ablation_family,), tag=f"fraction={fraction:g}", log=log))
    return out


def run_style(suite, songs: list[Song], seed: int, judge, log=print) -> SeedResult:
    """Style unlearnability (Fig. 8): every song of `suite.measures.style_artist` protected (cloak-blackbox)."""
    spec = suite.measures
    artist = [i for i, song in enumerate(songs) if song.artist == spec.style_artist]
    return run_seed(suite, songs, seed, fraction=len(artist) / len(songs), methods=("cloak-blackbox",),
                    families=spec.style_families, tag=f"style={spec.style_artist}", protected=artist, judge=judge,
                    log=log)


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def jsonable(value):
    """Summaries hold floats, lists and dicts; anything else becomes its string."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


__all__ = ["audibility", "protected_indices", "run_ablations", "run_seed", "run_style"]
