"""From the unlearning runs to the numbers: forgetting and utility with intervals, cost, the
relearning attack, the cloak beside them; headline JSON and the report's tables.

Forgetting, on the songs to forget F (and, in T2, on the artist's unreleased songs), with the
retrained-without model as the target:

    PS_forget = (L_after − L_before) / (L_retrained − L_before)

the threat benchmark's arithmetic (`unlearnability.score.bootstrap_interval`: a ratio of mean
losses over seeds and songs, hierarchical bootstrap) with L_before the original model's loss
standing for "clean" and L_retrained for "never learnt". 1: forgotten as if never seen; 0:
nothing forgotten; above 1: the songs are now predicted worse than by a model that never saw
them (over-forgetting: the model is being broken, look at utility). The cloak's PS is the same
formula with L_after the loss of the attacker trained on the cloaked songs: it answers the
same question on the same songs, against the same two models.

Utility: the relative change of the loss on retained and on held-out music against the
original model, (m(L_after) − m(L_before)) / m(L_before), with the same bootstrap
(`relative_change_interval`). Cost: seconds of unlearning, against the seconds of retraining.
Relearning attack: PS_forget after a short fine-tune on the retained songs, of each method's
model and of the retrained model (which shows what the same fine-tune does to a model that
never saw F). Generated music (when measured, `generated`): the FD of each model's music to
held-out music, and its relative change against the original's, means over seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harmonycloak.bench.unlearnability.score import ScoreInterval, bootstrap_interval
from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
from harmonycloak.bench.unlearnability.threat_report import losses, mean_audibility
from harmonycloak.bench.unlearning.experiment import RELEARNED
from harmonycloak.bench.unlearning.methods import RETRAIN

ORIGINAL = "original"
SMALL_GAP = 0.02  # a relative gap under this (2 % of the loss) leaves a PS that reads as noise
N_RESAMPLES = 2000


@dataclass
class UnlearningScore:
    """One row of the report: a threat, a family, a method (or cloak, or the gold standard)."""

    kind: str  # "unlearning", "gold standard" or "cloak"
    forget: ScoreInterval  # PS on the songs to forget
    gap: float  # (L_retrained − L_before) / L_before on them: what there is to forget, relative
    unreleased: ScoreInterval | None  # T2: PS on the artist's unreleased songs
    retain_change: ScoreInterval  # relative change of the loss on retained songs against the original
    heldout_change: ScoreInterval  # ... and on held-out music
    cost_s: float  # mean seconds: unlearning (methods), training (gold standard), protecting F (cloaks)
    retrain_s: float  # mean seconds of retraining without F
    relearned: ScoreInterval | None  # PS after the relearning attack (not for cloaks)
    audibility: dict  # cloaks: the release's SNR, NMR, ΔLUFS (mean over seeds)
    unreleased_gap: float = math.nan  # T2: the gap on the artist's unreleased songs, which their PS divides by
    fd_generated: float = math.nan  # mean over seeds of the FD of generated music to held-out music
    fd_change: float = math.nan  # mean over seeds of its relative change against the original's


def forgetting_interval(results: list[ThreatSeedResult], threat: str, family: str, condition: str,
                        probe: str = "forget", after_probe: str | None = None) -> ScoreInterval | None:
    """PS_forget of `condition` on `probe` (its losses read from `after_probe` when given); None if a run is missing."""
    after = losses(results, threat, family, condition, after_probe or probe)
    before = losses(results, threat, family, ORIGINAL, probe)
    retrained = losses(results, threat, family, RETRAIN, probe)
    if after is None or before is None or retrained is None:
        return None
    return bootstrap_interval(after, before, retrained, n_resamples=N_RESAMPLES, seed=0)


def relative_change_interval(after: np.ndarray, before: np.ndarray) -> ScoreInterval:
    """(m(after) − m(before)) / m(before) with the hierarchical bootstrap of `bootstrap_interval`,
    (seeds, songs) each: its ratio of means with the reference 2·before, whose gap m(2B) − m(B)
    is m(B)."""
    return bootstrap_interval(after, before, 2.0 * np.asarray(before, np.float64), n_resamples=N_RESAMPLES, seed=0)


def mean_elapsed_s(results: list[ThreatSeedResult], threat: str, family: str, condition: str) -> float:
    values = [run.elapsed_s for result in results if (run := result.run(threat, family, condition)) is not None]
    return float(np.mean(values)) if values else math.nan


def generated_fd(results: list[ThreatSeedResult], threat: str, family: str, condition: str) -> tuple[float, float]:
    """(mean FD of generated music over seeds, mean of its relative change against the original's);
    NaN where it was not measured."""
    values, changes = [], []
    for result in results:
        run, original = result.run(threat, family, condition), result.run(threat, family, ORIGINAL)
        fd = run.measures.get("fd_generated") if run is not None else None
        reference = original.measures.get("fd_generated") if original is not None else None
        if fd is not None:
            values.append(fd)
            if reference:
                changes.append(fd / reference - 1.0)
    return (float(np.mean(values)) if values else math.nan, float(np.mean(changes)) if changes else math.nan)


def score_table(results: list[ThreatSeedResult], suite) -> dict[str, dict[str, dict[str, UnlearningScore]]]:
    """threat → family → condition → `UnlearningScore`, for every condition that ran."""
    table: dict[str, dict[str, dict[str, UnlearningScore]]] = {}
    forget_count = len(results[0].released_songs)
    for threat in suite.threat_models:
        for family in suite.families_for(threat):
            gap = relative_gap(results, threat, family, "forget")
            if not math.isfinite(gap):
                continue
            retrain_s = mean_elapsed_s(results, threat, family, RETRAIN)
            rows = [(RETRAIN, "gold standard")] + [(m, "unlearning") for m in suite.methods] + [
                (c, "cloak") for c in suite.cloaks]
            for condition, kind in rows:
                forget = forgetting_interval(results, threat, family, condition)
                if forget is None:
                    continue
                changes = {probe: relative_change_interval(losses(results, threat, family, condition, probe),
                                                           losses(results, threat, family, ORIGINAL, probe))
                           for probe in ("retain", "heldout")}
                audibility = mean_audibility(results, condition, family) if kind == "cloak" else {}
                cost_s = (audibility_cost(results, condition, family) * forget_count if kind == "cloak"
                          else mean_elapsed_s(results, threat, family, condition))
                table.setdefault(threat, {}).setdefault(family, {})[condition] = UnlearningScore(
                    kind, forget, gap,
                    forgetting_interval(results, threat, family, condition, "unreleased") if threat == "mimicry" else None,
                    changes["retain"], changes["heldout"], cost_s, retrain_s,
                    None if kind == "cloak" else forgetting_interval(results, threat, family, condition, "forget",
                                                                     RELEARNED),
                    audibility, relative_gap(results, threat, family, "unreleased"),
                    *generated_fd(results, threat, family, condition))
    return table


def relative_gap(results: list[ThreatSeedResult], threat: str, family: str, probe: str) -> float:
    """Mean over seeds of (L_retrained − L_before) / L_before on a probe; NaN when a run or the probe is missing."""
    before = losses(results, threat, family, ORIGINAL, probe)
    retrained = losses(results, threat, family, RETRAIN, probe)
    if before is None or retrained is None:
        return math.nan
    return float(np.mean((retrained.mean(axis=1) - before.mean(axis=1)) / before.mean(axis=1)))


def audibility_cost(results: list[ThreatSeedResult], method: str, family: str) -> float:
    """Mean seconds of protection per song of a cloak's release, over seeds."""
    from harmonycloak.bench.unlearnability.releases import release_key

    key = release_key(method, family)
    values = [record.cost_s_per_song[key] for result in results
              if (record := result.releases.get(method)) is not None and key in record.cost_s_per_song]
    return float(np.mean(values)) if values else math.nan


def headline_threat_models(table: dict[str, dict[str, dict[str, UnlearningScore]]]) -> dict:
    """The `threat_models` part of the headline (`unlearnability.headline`): per method its PS_forget
    and interval, the gap, and for cloaks the release's audibility. No unlearning method has a
    random control: beats_random_control is false throughout."""
    from harmonycloak.bench.unlearnability.headline import headline_entry

    return {threat: {family: {method: headline_entry(score.forget, gap=score.gap,
                                                     visqol=score.audibility.get("visqol_mos"),
                                                     snr_db=score.audibility.get("snr_db"),
                                                     nmr_p95_db=score.audibility.get("nmr_p95_db"),
                                                     beats_random_control=False)
                              for method, score in methods.items()}
                     for family, methods in families.items()}
            for threat, families in table.items()}


TITLES = {"scratch": "T1 — trained from scratch on a corpus that held the songs",
          "mimicry": "T2 — the zoo model fine-tuned on the artist's album, the songs among it"}


def markdown_tables(table: dict[str, dict[str, dict[str, UnlearningScore]]]) -> list[str]:
    out = []
    for threat, families in table.items():
        unreleased = threat == "mimicry"
        generated = any(math.isfinite(s.fd_generated) for scores in families.values() for s in scores.values())
        out += [f"### {TITLES.get(threat, threat)}", "",
                "| family | gap | method | kind | PS forget [95 % CI] |" + (" PS unreleased |" if unreleased else "")
                + " Δ loss retained | Δ loss held-out |" + (" FD generated (Δ) |" if generated else "")
                + " seconds | × retraining | PS after relearning | SNR dB |",
                "|---|---|---|---|---|" + ("---|" if unreleased else "") + ("---|" if generated else "")
                + "---|---|---|---|---|---|"]
        for family, scores in families.items():
            for method, score in scores.items():
                out.append(
                    f"| {family} | {_pct(score.gap)} | {method} | {score.kind} | {score.forget.text()} |"
                    + (f" {score.unreleased.text() if score.unreleased else '—'} |" if unreleased else "")
                    + f" {_change(score.retain_change)} | {_change(score.heldout_change)} |"
                    + (f" {_num(score.fd_generated, '.3f')} ({_pct(score.fd_change, '+.0f')}) |" if generated else "")
                    + f" {_num(score.cost_s, '.1f')} | {_num(score.cost_s / score.retrain_s, '.2f')} |"
                    f" {score.relearned.text() if score.relearned else '—'} | {_num(score.audibility.get('snr_db'))} |")
        out.append("")
    return out


def verdicts(table: dict[str, dict[str, dict[str, UnlearningScore]]], relearn_steps: int) -> list[str]:
    """Plain sentences: per threat and family, the unlearning method that came closest to retraining
    without breaking the model, and the cloaks beside it."""
    lines = []
    for threat, families in table.items():
        for family, scores in families.items():
            where = f"{threat} / {family}"
            gold = scores.get(RETRAIN)
            methods = {m: s for m, s in scores.items() if s.kind == "unlearning" and math.isfinite(s.forget.ps)}
            if not methods or gold is None:
                continue
            best = min(methods, key=lambda m: abs(methods[m].forget.ps - 1.0))
            score = methods[best]
            lines.append(
                f"{where}: the gap to forget is {_pct(score.gap)} of the loss. Closest to retraining: {best}, "
                f"PS {score.forget.text()} in {_num(score.cost_s, '.1f')} s ({_num(score.cost_s / score.retrain_s, '.2f')} × "
                f"retraining), retained loss {_change(score.retain_change)}, held-out {_change(score.heldout_change)} "
                f"(retraining itself: {_change(gold.retain_change)}, {_change(gold.heldout_change)}); after "
                f"{relearn_steps} relearning steps on the retained songs its PS is "
                f"{score.relearned.text() if score.relearned else 'n/a'} (the retrained model's: "
                f"{gold.relearned.text() if gold.relearned else 'n/a'}).")
            if abs(score.unreleased_gap) < SMALL_GAP:
                lines.append(f"{where}: on the artist's unreleased songs retraining without the clips changes the loss "
                             f"by {_pct(score.unreleased_gap, '.1f')}: their PS divides by that, and reads as "
                             "noise where the gap is this small.")
            broken = [m for m, s in methods.items() if s.forget.defined and s.forget.low > 1.0]
            if broken:
                lines.append(f"{where}: over-forgetting (PS interval above 1, the songs now predicted worse than by a "
                             f"model that never saw them): {', '.join(broken)}.")
            cloaks = [f"{c} {s.forget.text()}" for c, s in scores.items() if s.kind == "cloak"]
            if cloaks:
                lines.append(f"{where}: the cloak on the same songs, PS: {'; '.join(cloaks)}.")
    return lines


def _pct(value: float, spec: str = ".0f") -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:{spec}} %"


def _change(interval: ScoreInterval) -> str:
    """'+2.1 % [+0.4, +3.9]' from a relative change interval."""
    if not math.isfinite(interval.ps):
        return "n/a"
    text = f"{100 * interval.ps:+.1f} %"
    return text + (f" [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]" if interval.defined else "")


def _num(value, spec: str = ".0f") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)
