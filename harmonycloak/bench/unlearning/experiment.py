"""One seed of the unlearning benchmark: train the attacker on the clean songs, make it forget some
of them with every method, and release the same songs cloaked instead, on the threat benchmark's
data, attackers and releases.

The songs to forget, F, are the first `scratch_released` clips of the artist's released tracks:
the songs the threat benchmark's T1 protects. Per threat model:

  scratch (T1)  retain set R = the threat benchmark's corpus; the original model is its
                `none` attacker (from random weights on R + F) and the gold standard its
                `unseen` one (on R alone), trained by the same code with the same seed
  mimicry (T2)  R = the artist's other released clips; the original model is the zoo base
                fine-tuned on R + F, the gold standard the base fine-tuned on R alone

Conditions (each an `AttackerRun` of one seed, every one measured on the same probes):

  original      trained on R + F, clean (L_before)
  retrain       trained on R only (L_retrained): the gold standard, and its cost
  METHOD        the original after an unlearning method (`methods.METHODS`); its elapsed_s is
                the unlearning alone
  CLOAK         trained on R + the cloaked release of F (`unlearnability.releases`): what the
                musician gets by protecting F before release instead

Probes, per-song losses kept:  forget (the clean F), retain (the first `RETAIN_PROBED` of R),
heldout (other music in no training set), unreleased (T2: the artist's unreleased tracks), and
"forget@relearned": F after the relearning attack, a short fine-tune on R of the model as it
ends (original, retrain and every method; `relearned_losses`). When the suite asks, each run's
`measures["fd_generated"]`: the FD of its generated music to the held-out songs (`generated`).

Seeds are paired: for one seed the original, the gold standard and the cloaked runs start from
the same weights and crops, and every method starts from the same original and draws the same
forget crops.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import numpy as np

from harmonycloak.bench.unlearnability.releases import Release, release, release_key
from harmonycloak.bench.unlearnability.threat_experiment import BenchData, ReleaseRecord, ThreatSeedResult
from harmonycloak.bench.unlearnability.threats import (
    AttackerRun,
    crop_grid_samples,
    song_losses,
    trained_attacker,
)
from harmonycloak.bench.generated import generated_fd, has_sampler, lazy_zoo_encoder
from harmonycloak.bench.unlearning.methods import unlearn
from harmonycloak.optim.finetune import finetune
from harmonycloak.settings import WORKING_RATE_HZ

RETAIN_PROBED = 8  # retained songs measured (T1's retain set is the whole corpus)
RELEARNED = "forget@relearned"  # the probe of the forget set after the relearning attack
RELEARN_SEED_OFFSET = 20_000  # the relearning attack's crops: another stream than the training's


def forget_and_retain(threat: str, data: BenchData, forget_count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(F, R) of a threat model (module docstring)."""
    released = [song.samples for song in data.album.released]
    retain = [song.samples for song in data.corpus] if threat == "scratch" else released[forget_count:]
    return released[:forget_count], retain


def relearned_losses(model, retain: list[np.ndarray], forget: list[np.ndarray], suite, threat: str,
                     seed: int) -> list[float]:
    """The relearning attack: a copy of `model` fine-tuned briefly on R; its losses on F."""
    spec = suite.threat.threats
    recipe = replace(spec.recipe(threat, model.family), kind="full", steps=suite.relearn_steps, augment_gain=False,
                     augment_speed=False, crop_grid_samples=crop_grid_samples(model))
    attacked = copy.deepcopy(model)
    finetune(attacked, retain, recipe, seed + RELEARN_SEED_OFFSET)
    return song_losses(attacked, forget, spec.probe_segment_s)


def run_unlearning_seed(suite, data: BenchData, seed: int, log=print) -> ThreatSeedResult:
    """Every family × threat × condition of one seed (module docstring). The result's
    `released_songs` are the songs to forget (the cloak protects the same ones)."""
    from harmonycloak.bench.unlearnability.experiment import audibility, jsonable

    spec = suite.threat.threats
    forget_count = spec.scratch_released
    forget_names = [song.name for song in data.album.released[:forget_count]]
    result = ThreatSeedResult(seed, forget_names, [s.name for s in data.album.unreleased],
                              forget_count / (forget_count + len(data.corpus)))
    heldout = [song.samples for song in data.heldout[: suite.heldout_songs]]
    releases: dict[str, Release] = {}
    zoo_encoder = lazy_zoo_encoder()

    def released(method: str, family: str, forget: list[np.ndarray]) -> list[np.ndarray]:
        key = release_key(method, family)
        if f"{method}|{key}" not in releases:
            made = releases[f"{method}|{key}"] = release(method, forget, family, seed, suite.threat.threat_cloak)
            record = result.releases.setdefault(method, ReleaseRecord())
            record.audibility[key] = audibility(forget, made.songs, WORKING_RATE_HZ, suite.threat.visqol)
            record.cost_s_per_song[key] = made.elapsed_s / len(forget)
            record.summary[key] = jsonable(made.summary)
            log(f"  seed {seed} release {method} [{key}]: {made.elapsed_s:.1f} s, "
                f"SNR {record.audibility[key]['snr_db']:.1f} dB")
        return releases[f"{method}|{key}"].songs

    for family in dict.fromkeys(suite.families + (suite.scratch_families or ())):
        for threat in (t for t in suite.threat_models if family in suite.families_for(t)):
            forget, retain = forget_and_retain(threat, data, forget_count)
            probes = {"forget": forget, "retain": retain[:RETAIN_PROBED], "heldout": heldout}
            if threat == "mimicry":
                probes["unreleased"] = [song.samples for song in data.album.unreleased]

            def keep(condition: str, model, curve: list[float], elapsed_s: float, relearn: bool = True) -> None:
                losses = {name: song_losses(model, songs, spec.probe_segment_s) for name, songs in probes.items()}
                if relearn:
                    losses[RELEARNED] = relearned_losses(model, retain, forget, suite, threat, seed)
                run = AttackerRun(threat, family, condition, seed, losses, curve, elapsed_s)
                if suite.generated is not None and has_sampler(family):
                    fd = generated_fd(model, zoo_encoder(), heldout, suite.generated, seed)
                    if fd is not None:
                        run.measures["fd_generated"] = fd
                result.runs.append(run)
                log(f"  seed {seed} {threat} {family} {condition}: forget {run.mean_loss('forget'):.4f}, "
                    f"retain {run.mean_loss('retain'):.4f}, relearned {run.mean_loss(RELEARNED):.4f} "
                    f"({elapsed_s:.0f} s)")

            original, curve, elapsed_s = _timed_attacker(threat, family, retain + forget, spec, seed)
            keep("original", original, curve, elapsed_s)
            retrained, curve, elapsed_s = _timed_attacker(threat, family, retain, spec, seed)
            keep("retrain", retrained, curve, elapsed_s)
            for method in suite.methods:
                model = copy.deepcopy(original)
                recipe = replace(suite.recipe(threat), crop_grid_samples=crop_grid_samples(model))
                curve, elapsed_s = unlearn(method, model, forget, retain, recipe, seed)
                keep(method, model, curve, elapsed_s)
            for cloak in suite.cloaks:
                model, curve, elapsed_s = _timed_attacker(threat, family, retain + released(cloak, family, forget),
                                                          spec, seed)
                keep(cloak, model, curve, elapsed_s, relearn=False)
    return result


def _timed_attacker(threat: str, family: str, songs: list[np.ndarray], spec, seed: int):
    started = time.perf_counter()
    model, curve = trained_attacker(threat, family, songs, spec, seed)
    return model, curve, time.perf_counter() - started
