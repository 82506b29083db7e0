"""From the threat-model runs to the numbers: PS with intervals, the controls' verdicts, headline.json
and the summary's tables.

For a threat, an attacker family and a method, three (seeds, songs) arrays of losses on the
clean originals of the released songs give the score (`score.bootstrap_interval`):

  scratch   PS       = (L_method − L_none) / (L_unseen − L_none)
  mimicry   PS_mimic = (L_ft_method − L_ft_none) / (L_base − L_ft_none)

For a method carrying an attack, `none` and `unseen` are those with the same attack. The gap
beside every score is what seeing the songs taught the attacker: (L_unseen − L_none) / L_none
(T1) or (L_base − L_ft_none) / L_ft_none (T2). A cloak beats its random control when its
interval lies wholly above the interval of the random noise under the same bounds
(`score.beats`), and, for the MIDI cloaks where it ran, above that of the same notes at the
lowest velocity their bounds allow (the level the cloaks' optimisers end at). The mimicry
threat is also scored on the artist's unreleased songs.

The suite can see an effect in a family and threat when its positive control (white noise at
10 dB SNR) scores PS ≥ 0.5 with an interval above 0; where it does not, the report says the
suite is too weak there instead of drawing conclusions. Where the louder control (white noise
at 0 dB SNR, `positive-white-0db`) ran and is seen though 10 dB is not, the report says so
and still compares the cloaks with their random controls: T1's next-frame attackers learn the
songs through noise at 10 dB (docs/benchmark.md). The null control (random noise 44 dB under
the masking threshold, `random-dominant`) must read no effect: where its interval reaches past
±0.5, two runs on nearly the same songs drift apart by as much as an effect the suite must see,
and the report says the suite is too weak there whatever the positive control read.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from harmonycloak.bench.unlearnability.midi_mimicry import (
    LEVEL_CONTROL,
    MIDI_MIMICRY_FAMILIES,
    MIDI_RANDOM_CONTROL,
    POSITIVE_WRONG_NOTES,
)
from harmonycloak.bench.unlearnability.releases import RANDOM_CONTROL as AUDIO_RANDOM_CONTROL
from harmonycloak.bench.unlearnability.releases import OTHER_MUSIC, PRODUCT_DEFAULT, release_key, split_method
from harmonycloak.bench.unlearnability.score import ScoreInterval, beats, bootstrap_interval
from harmonycloak.bench.unlearnability.threat_experiment import ThreatSeedResult
from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP, scratch_sizes_text
from harmonycloak.settings import WORKING_RATE_HZ

POSITIVE = "positive-white-10db"
LOUD_POSITIVE = "positive-white-0db"  # when run: the louder control, for where 10 dB is not seen
POSITIVE_SEEN_PS = 0.5  # the positive control must reach this PS, its interval above 0, for a cell to count
THREAT_LABEL = {"scratch": "T1", "mimicry": "T2"}
CODEC_LM = "codec-lm"  # the group whose attackers crop on their codec's frame grid (`threats.attacker_recipe`)
NULL = "random-dominant"  # the null control: random noise far under the masking threshold, no effect to see
NULL_BAND_PS = POSITIVE_SEEN_PS  # its whole interval must lie within ±this: the least effect the positive control shows
SCRATCH_GAP_TARGET = 0.30  # T1 attackers must learn seen songs this much better than unseen ones
RANDOM_CONTROL = AUDIO_RANDOM_CONTROL | MIDI_RANDOM_CONTROL  # each cloak → the random noise under its bounds


def positive_control(family: str) -> str:
    """The audible control a family's cells must see: white noise for audio, wrong notes for MIDI."""
    return POSITIVE_WRONG_NOTES if family in MIDI_MIMICRY_FAMILIES else POSITIVE


@dataclass
class Score:
    """One cell of the headline: a threat, a family, a method."""

    interval: ScoreInterval
    gap: float  # what seeing the songs taught the attacker, relative
    beats_random_control: bool
    audibility: dict  # mean over seeds: snr_db, nmr_p95_db, loudness_change_lu, visqol_mos (when measured)
    unreleased: ScoreInterval | None = None  # mimicry: the score on the artist's unreleased songs
    fd_artist: float = math.nan  # mimicry: mean over seeds of the FD of the model's music to the artist's unreleased songs
    fd_ps: float = math.nan  # mimicry: (FD_method − FD_none) / (FD_base − FD_none), of those means
    fd_ci: tuple[float, float] = (math.nan, math.nan)  # its 95 % bootstrap interval over the seeds
    artist_share: float = math.nan  # mimicry: mean over seeds of the share of that music the artist classifier gives the artist
    share_ps: float = math.nan  # mimicry: (share_method − share_none) / (share_base − share_none)
    share_ci: tuple[float, float] = (math.nan, math.nan)  # its 95 % bootstrap interval over the seeds


def losses(results: list[ThreatSeedResult], threat: str, family: str, condition: str, probe: str,
           step: int | None = None) -> np.ndarray | None:
    """(seeds, songs) losses of a condition on a probe, in seed order; None if a seed lacks the run.
    `step`: measured after that step of the attacker's training instead of after its last."""
    rows = [_song_losses(result, threat, family, condition, probe, step) for result in results]
    return None if any(row is None for row in rows) else np.asarray(rows, dtype=np.float64)


def _song_losses(result: ThreatSeedResult, threat: str, family: str, condition: str, probe: str,
                 step: int | None = None) -> list | None:
    """One seed's losses of a condition on a probe (after `step`, when given: T2's base model,
    which never trains, is the same at every step); None where that seed did not measure it."""
    run = result.run(threat, family, condition)
    if run is None:
        return None
    if step is None or condition == "base":
        return run.song_losses.get(probe)
    return run.losses_at_step.get(str(step), {}).get(probe)


def seeds_with(results: list[ThreatSeedResult], threat: str, family: str, conditions: tuple[str, ...],
               probe: str, step: int | None = None) -> list[ThreatSeedResult]:
    """The seeds' results holding every one of `conditions` measured on `probe` (after `step`): a
    family or method run on more seeds than the rest (runs combined) is scored on all the seeds that ran it."""
    return [result for result in results
            if all(_song_losses(result, threat, family, condition, probe, step) is not None
                   for condition in conditions)]


def references(threat: str, attack: str | None) -> tuple[str, str]:
    """(the clean condition, the "never learnt" condition) a method with `attack` is scored against."""
    suffix = f"+{attack}" if attack else ""
    return f"none{suffix}", ("base" if threat == "mimicry" else f"unseen{suffix}")


def score_cell(results: list[ThreatSeedResult], threat: str, family: str, method: str, probe: str = "released",
               n_resamples: int = 2000, step: int | None = None) -> ScoreInterval | None:
    """PS of `method` with its 95 % interval over the seeds that ran it and its references; None
    when no seed did. `step`: every attacker measured after that step of its training (T2's
    reference, the base model, as it is)."""
    _, attack = split_method(method)
    clean_name, reference_name = references(threat, attack)
    results = seeds_with(results, threat, family, (method, clean_name, reference_name), probe, step)
    if not results:
        return None
    protected = losses(results, threat, family, method, probe, step)
    clean = losses(results, threat, family, clean_name, probe, step)
    reference = losses(results, threat, family, reference_name, probe, step)
    return bootstrap_interval(protected, clean, reference, n_resamples=n_resamples, seed=0)


def relative_gap(results: list[ThreatSeedResult], threat: str, family: str, attack: str | None = None,
                 step: int | None = None) -> float:
    """Mean over seeds of (L_reference − L_clean) / |L_clean| on the released songs (a measure may be
    negative: MuseGAN's logit); after `step` of the attackers' training when given."""
    clean_name, reference_name = references(threat, attack)
    results = seeds_with(results, threat, family, (clean_name, reference_name), "released", step)
    if not results:
        return math.nan
    clean = losses(results, threat, family, clean_name, "released", step)
    reference = losses(results, threat, family, reference_name, "released", step)
    return float(np.mean((reference.mean(axis=1) - clean.mean(axis=1)) / np.abs(clean.mean(axis=1))))


def style_scores(results: list[ThreatSeedResult], family: str, method: str,
                 measure: str = "fd_artist") -> tuple[float, float, tuple[float, float]]:
    """(mean of a T2 run's style `measure`, style PS, its interval) for a T2 method, the means over
    the seeds that measured all three runs; NaN where not measured.

    The measures: "fd_artist", the FD of what the fine-tuned model generates to the artist's
    unreleased songs; "artist_share", the share of it the artist classifier gives the artist.
    Style PS = (M_method − M_none) / (M_base − M_none): the share of what fine-tuning on the
    clean album moved the model's music toward the artist that the method undid (for either
    measure, whichever way it moves). The interval is the bootstrap of `score.bootstrap_interval`
    over the seeds alone (one value per seed and run: the generated music has no songs to pair).
    """
    _, attack = split_method(method)
    clean_name, base_name = references("mimicry", attack)
    triples = []
    for result in results:
        runs = [result.run("mimicry", family, condition) for condition in (method, clean_name, base_name)]
        values = [run.measures.get(measure) if run is not None else None for run in runs]
        if all(value is not None for value in values):
            triples.append(values)
    if not triples:
        return math.nan, math.nan, (math.nan, math.nan)
    values = np.asarray(triples, dtype=np.float64)  # (seeds, 3): method, none, base
    interval = bootstrap_interval(values[:, :1], values[:, 1:2], values[:, 2:], min_gap=0.0)
    return float(values[:, 0].mean()), interval.ps, (interval.low, interval.high)


def mean_audibility(results: list[ThreatSeedResult], method: str, family: str) -> dict:
    """The release's audibility measures for this family's key, averaged over seeds."""
    name, attack = split_method(method)
    key = release_key(name, family)
    values: dict[str, list[float]] = {}
    for result in results:
        record = result.releases.get(method if attack else name)
        for measure, value in (record.audibility.get(key, {}) if record else {}).items():
            if value is not None and math.isfinite(value):
                values.setdefault(measure, []).append(value)
    return {measure: float(np.mean(v)) for measure, v in values.items()}


def score_table(results: list[ThreatSeedResult], threat_models: tuple[str, ...], families: tuple[str, ...],
                methods_of, n_resamples: int = 2000) -> dict[str, dict[str, dict[str, Score]]]:
    """threat → family → method → `Score`, for every condition that ran; `methods_of(threat, family)`
    names a cell's methods."""
    table: dict[str, dict[str, dict[str, Score]]] = {}
    for threat in threat_models:
        for family in families:
            cells: dict[str, ScoreInterval] = {}
            for method in ("none",) + tuple(m for m in methods_of(threat, family) if m != "none"):
                interval = score_cell(results, threat, family, method, n_resamples=n_resamples)
                if interval is not None:
                    cells[method] = interval
            for method, interval in cells.items():
                control, level = controls_of(method)  # where it ran, a cloak must clear the control at its level too
                control_interval, level_interval = cells.get(control), cells.get(level)
                unreleased = (score_cell(results, threat, family, method, "unreleased", n_resamples)
                              if threat == "mimicry" else None)
                styles = ((*style_scores(results, family, method), *style_scores(results, family, method, "artist_share"))
                          if threat == "mimicry" else (math.nan, math.nan, (math.nan, math.nan)) * 2)
                table.setdefault(threat, {}).setdefault(family, {})[method] = Score(
                    interval, relative_gap(results, threat, family, split_method(method)[1]),
                    control_interval is not None and beats(control_interval, interval)
                    and (level_interval is None or beats(level_interval, interval)),
                    mean_audibility(results, method, family), unreleased, *styles)
    return table


def controls_of(method: str) -> tuple[str | None, str | None]:
    """The cells a cloak must clear: its random control and its level control (MIDI), after the same
    attack as `method`; None where it has none."""
    name, attack = split_method(method)
    return tuple(f"{control}+{attack}" if control and attack else control
                 for control in (RANDOM_CONTROL.get(name), LEVEL_CONTROL.get(name)))


def headline_threat_models(table: dict[str, dict[str, dict[str, Score]]]) -> dict:
    """The `threat_models` part of headline.json (`headline.build_headline`)."""
    from harmonycloak.bench.unlearnability.headline import headline_entry

    return {threat: {family: {method: headline_entry(score.interval, gap=score.gap,
                                                     visqol=score.audibility.get("visqol_mos"),
                                                     snr_db=score.audibility.get("snr_db"),
                                                     nmr_p95_db=score.audibility.get("nmr_p95_db"),
                                                     beats_random_control=score.beats_random_control)
                              for method, score in methods.items()}
                     for family, methods in families.items()}
            for threat, families in table.items()}


def positive_seen(scores: dict[str, Score], control: str = POSITIVE) -> bool:
    """Whether a family's positive `control` is seen: PS ≥ 0.5 with its interval above 0."""
    score = scores.get(control)
    return (score is not None and score.interval.defined and score.interval.ps >= POSITIVE_SEEN_PS
            and score.interval.low > 0)


def checks(table: dict[str, dict[str, dict[str, Score]]]) -> list[str]:
    """Plain statements of what the suite can and cannot see, and what the cloaks did."""
    lines = []
    for threat, families in table.items():
        for family, scores in families.items():
            where = f"{threat} / {family}"
            gap = scores["none"].gap if "none" in scores else math.nan
            if threat == "scratch" and not gap >= SCRATCH_GAP_TARGET:
                lines.append(f"{where}: the seen/unseen gap is {100 * gap:.0f} %, under the {100 * SCRATCH_GAP_TARGET:.0f} % "
                             "this threat needs; its scores carry wide intervals.")
            if null_drifts(scores):
                lines.append(f"{where}: random noise far under the masking threshold (the null control) reads PS "
                             f"{scores[NULL].interval.text()}: two runs on nearly the same songs drift apart by as "
                             "much as an effect the suite must see; the suite is too weak here, and nothing below "
                             "is a conclusion about protection.")
                lines += [f"{where}: {line}" for line in style_lines(scores, family, verdicts=True)]
                continue
            positive = scores.get(positive_control(family))
            loud = scores.get(LOUD_POSITIVE)
            if positive is None and loud is None:
                lines.append(f"{where}: the positive control was not run, so nothing here says whether the suite "
                             "could see an effect; the comparisons below stand only against their random controls.")
            elif positive is None or not positive_seen(scores, positive_control(family)):
                seen = positive_seen(scores, LOUD_POSITIVE)
                lines.append(f"{where}: {_loud_control_text(positive, loud, seen)}")
                if not seen:
                    lines += [f"{where}: {line}" for line in style_lines(scores, family, verdicts=True)]
                    continue
            lines += [f"{where}: {line}" for line in style_lines(scores, family)]
            winners = [m for m, s in scores.items() if s.beats_random_control]
            cloaks = [m for m in scores if split_method(m)[0] in RANDOM_CONTROL]
            losers = [m for m in cloaks if m not in winners]
            if winners:
                lines.append(f"{where}: beats its random control: {', '.join(winners)}.")
            if losers:
                lines.append(f"{where}: within its random control (no measurable protection): {', '.join(losers)}.")
    return lines


def null_drifts(scores: dict[str, Score]) -> bool:
    """Whether a family's null control ran and its interval reaches past ±`NULL_BAND_PS`."""
    score = scores.get(NULL)
    return (score is not None and score.interval.defined
            and not -NULL_BAND_PS < score.interval.low <= score.interval.high < NULL_BAND_PS)


def _loud_control_text(positive: Score | None, loud: Score | None, loud_seen: bool) -> str:
    """What `checks` says where white noise at 10 dB is not seen or not run (`positive` None)
    and the 0 dB control decides (`loud` None: not run)."""
    too_weak = "the suite is too weak here, and nothing below is a conclusion about protection."
    if positive is None:
        if not loud_seen:
            return f"white noise at 10 dB SNR was not run, and at 0 dB it is not seen (PS {loud.interval.text()}): {too_weak}"
        return (f"white noise at 10 dB SNR was not run; at 0 dB it is seen (PS {loud.interval.text()}): a large effect "
                "shows here; the comparisons below stand against their random controls.")
    if not loud_seen:
        return (f"the positive control is not seen (PS {positive.interval.text()}"
                + (f"; at 0 dB SNR {loud.interval.text()}" if loud else "") + f"): {too_weak}")
    return (f"white noise at 10 dB SNR is not seen (PS {positive.interval.text()}), at 0 dB it is (PS "
            f"{loud.interval.text()}): the attacker learns the songs through noise a tenth as strong as the music, "
            "so only a large effect shows here; the comparisons below stand against their random controls.")


def style_seen(ps: float, interval: tuple[float, float]) -> bool:
    """The positive rule for a style PS: at least 0.5, its interval above 0."""
    return ps >= POSITIVE_SEEN_PS and math.isfinite(interval[0]) and interval[0] > 0


STYLE_CONTROL_WORDS = {OTHER_MUSIC: "other music released in place of the album", POSITIVE_WRONG_NOTES: "the wrong notes"}


def style_control(family: str) -> str:
    """The release the style measures must see: other music in the album's place for audio, the
    wrong notes for MIDI."""
    return POSITIVE_WRONG_NOTES if family in MIDI_MIMICRY_FAMILIES else OTHER_MUSIC


def style_lines(scores: dict[str, Score], family: str, verdicts: bool = False) -> list[str]:
    """Whether the style measures see their control (`style_control`): [] where it did not run or
    the family generates nothing. With `verdicts`, for a family whose losses cannot be read, also
    which cloaks the FD's style PS puts above their random control (whole interval above)."""
    control = scores.get(style_control(family))
    if control is None or not (math.isfinite(control.fd_ps) or math.isfinite(control.share_ps)):
        return []
    what = STYLE_CONTROL_WORDS[style_control(family)]
    seen = [name for name, ps, interval in (("the FD to the artist", control.fd_ps, control.fd_ci),
                                            ("the artist share", control.share_ps, control.share_ci))
            if style_seen(ps, interval)]
    values = ", ".join(f"{label} style PS {_style_ps(ps, interval)}" for label, ps, interval in
                       (("FD", control.fd_ps, control.fd_ci), ("artist share", control.share_ps, control.share_ci))
                       if math.isfinite(ps))
    if not seen:
        return [f"the style measures do not see {what} ({values}): the style columns are shown, not read."]
    lines = [f"{' and '.join(seen)} see{'s' if len(seen) == 1 else ''} {what} ({values}): "
             "the style columns can be read there."]
    if verdicts and "the FD to the artist" in seen:
        judged = {method: _style_beats(scores, method) for method in scores if split_method(method)[0] in RANDOM_CONTROL}
        winners = [method for method, won in judged.items() if won]
        losers = [method for method, won in judged.items() if not won]
        if winners:
            lines.append(f"by the FD's style PS, beats its random control: {', '.join(winners)}.")
        if losers:
            lines.append(f"by the FD's style PS, within its random control: {', '.join(losers)}.")
    return lines


def _style_beats(scores: dict[str, Score], method: str) -> bool:
    """Whether the FD's style PS interval of `method` lies wholly above its random control's (and
    its level control's, where that ran)."""
    control, level = controls_of(method)
    clears = [scores[name].fd_ci[1] for name in (control, level) if name in scores]
    low = scores[method].fd_ci[0]
    return control in scores and math.isfinite(low) and all(math.isfinite(high) and low > high for high in clears)


_MIDI_FD_TEXT = (" For the MIDI families the artist is the composer: the FD is between the bars the model writes "
                 "(MuseGAN: phrases from the seed's latents; SymphonyNet: the continuation of the first bar of the "
                 "unreleased pieces' phrases) and the bars of the composer's unreleased pieces, each bar described by "
                 "its pitch-class profile and, per track, its sounding share, used pitch classes and register.")
_MIDI_SHARE_TEXT = (" For the MIDI families the artist share is the share of the sounding bars the model writes (the same "
                    "phrases, tracks merged, 4 steps per beat) that a classifier of the composer against the zoo's own "
                    "symbolic corpus (logistic regression over the style classifier's features) gives the composer.")


def _midi_measured(families: dict[str, dict[str, Score]], measure: str) -> bool:
    """Whether any MIDI family's cell carries the style `measure` ("fd_artist" or "artist_share")."""
    return any(math.isfinite(getattr(score, measure)) for family in MIDI_MIMICRY_FAMILIES
               for score in families.get(family, {}).values())


def markdown_tables(table: dict[str, dict[str, dict[str, Score]]], judge: dict | None = None) -> list[str]:
    """One Markdown table per threat model: every family and method with its score and audibility;
    `judge` is the artist classifier's report (`ThreatSeedResult.artist_classifier`)."""
    out = []
    titles = {"scratch": "T1 — from scratch (the paper's threat): PS = (L_method − L_none) / (L_unseen − L_none)",
              "mimicry": "T2 — style mimicry (fine-tune of the zoo model): PS = (L_ft,method − L_ft,none) / "
                         "(L_base − L_ft,none); also on the artist's unreleased songs"}
    for threat, families in table.items():
        styled = any(math.isfinite(score.fd_artist) for scores in families.values() for score in scores.values())
        shared = any(math.isfinite(score.artist_share) for scores in families.values() for score in scores.values())
        out += [f"### {titles.get(threat, threat)}", "",
                "| family | gap | method | PS [95 % CI] | unreleased PS | beats random control | SNR dB | "
                "NMR p95 dB | ΔLUFS | ViSQOL |" + (" FD to the artist (style PS) |" if styled else "")
                + (" artist share (style PS) |" if shared else ""),
                "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if styled else "") + ("---|" if shared else "")]
        for family, scores in families.items():
            for method, score in scores.items():
                sound = score.audibility
                style = (f" {_num(score.fd_artist, '.3f')} ({_style_ps(score.fd_ps, score.fd_ci)}) |"
                         if math.isfinite(score.fd_artist) else " — |") if styled else ""
                style += (f" {_num(score.artist_share, '.2f')} ({_style_ps(score.share_ps, score.share_ci)}) |"
                          if math.isfinite(score.artist_share) else " — |") if shared else ""
                out.append(f"| {family} | {_pct(score.gap)} | {method} | {score.interval.text()} | "
                           f"{score.unreleased.text() if score.unreleased else '—'} | "
                           f"{'yes' if score.beats_random_control else ('—' if method not in _scored(method) else 'no')} | "
                           f"{_num(sound.get('snr_db'))} | {_num(sound.get('nmr_p95_db'))} | "
                           f"{_num(sound.get('loudness_change_lu'), '+.2f')} | {_num(sound.get('visqol_mos'), '.2f')} |"
                           + style)
        if styled:
            out += ["", "FD to the artist: the Fréchet distance, in the zoo encoder's embedding, between what the "
                        "fine-tuned model generates and the artist's unreleased songs (mean over seeds; lower: closer "
                        "to the artist). Style PS = (FD_method − FD_none) / (FD_base − FD_none): 0 for the clean "
                        "album, 1 where the fine-tune moved the model's music no closer to the artist than the base "
                        "model's." + (_MIDI_FD_TEXT if _midi_measured(families, "fd_artist") else "")]
        if shared:
            out += ["", "Artist share: the share of the generated windows (0.64 s) that a classifier of the zoo "
                        "encoder's embedding, trained on clean music of the artist and of the corpus's other artists, "
                        "gives the artist (mean over seeds; higher: more like the artist). Style PS as for the FD: "
                        "(share_method − share_none) / (share_base − share_none)." + _judge_text(judge or {})
                        + (_MIDI_SHARE_TEXT if _midi_measured(families, "artist_share") else "")]
        if any(math.isfinite(score.audibility.get("visqol_mos", math.nan))
               for scores in families.values() for score in scores.values()):
            out += ["", "SNR, NMR p95 and ΔLUFS compare the released clips with their clean originals, all joined; "
                        "ViSQOL (v3, audio mode, MOS from 1 to 4.73 for identical audio) the first released clip alone, "
                        f"at the rate the models hear ({WORKING_RATE_HZ / 1000:g} kHz mono), means over seeds."]
        out += _midi_release_text(families)
        out.append("")
    return out


def steps_measured(results: list[ThreatSeedResult], threat: str) -> list[int]:
    """The steps before the last after which some attacker of `threat` was measured, ascending."""
    return sorted({int(step) for result in results for run in result.runs if run.threat == threat
                   for step in run.losses_at_step})


def along_training_markdown(results: list[ThreatSeedResult], threat_models: tuple[str, ...],
                            families: tuple[str, ...], methods_of, last_steps: dict[str, int | None],
                            n_resamples: int = 2000) -> list[str]:
    """For each threat whose attackers were measured on the way (`ThreatSpec.probe_steps`), a table
    of every method's PS [95 % CI] after each step measured and after the last (`last_steps`:
    threat → the training's steps, None where they differ by family), with the gap at each step; []
    when none was.

    Each column scores every condition after the same step, with the same seeds' pairing; T2's
    reference, the base model, does not train. Taking the column where a method scores highest
    picks the best of several looks at noisy numbers: read a peak beside its neighbours."""
    out = []
    for threat in threat_models:
        steps = steps_measured(results, threat)
        if not steps:
            continue
        columns: list[int | None] = [*steps, None]
        label = THREAT_LABEL.get(threat, threat)
        out += [f"### {label} along the attacker's training: PS [95 % CI] after each step measured", "",
                "| family | method | " + " | ".join(f"step {step}" for step in steps)
                + (f" | step {last_steps[threat]} (last) |" if last_steps.get(threat) else " | last step |"),
                "|---|---|" + "---|" * len(columns)]
        for family in families:
            gaps = [relative_gap(results, threat, family, step=step) for step in columns]
            if all(math.isnan(gap) for gap in gaps):
                continue
            out.append(f"| {family} | gap | " + " | ".join(_pct(gap) for gap in gaps) + " |")
            for method in methods_of(threat, family):
                if method == "none":
                    continue
                cells = [score_cell(results, threat, family, method, n_resamples=n_resamples, step=step)
                         for step in columns]
                if any(cell is not None for cell in cells):
                    out.append(f"| {family} | {method} | "
                               + " | ".join(cell.text() if cell is not None else "—" for cell in cells) + " |")
        out += ["", f"Gap: (L_{'base' if threat == 'mimicry' else 'unseen'} − L_none) / L_none after that step. "
                    "Every column scores each condition after the same step (paired seeds); a peak is one look "
                    "of several at noisy numbers: read it beside its neighbours.", ""]
    return out


def _midi_release_text(families: dict[str, dict[str, Score]]) -> list[str]:
    """What each MIDI release added (MIDI has no SNR): added notes per note of the pieces, and how
    far under the pieces' own velocity they sit (DLS dB, median)."""
    out = []
    for family, scores in families.items():
        if family not in MIDI_MIMICRY_FAMILIES:
            continue
        added = [f"{method} adds {score.audibility['added_notes_per_note']:.2f} notes per note, "
                 f"{_num(score.audibility.get('added_below_own_db'))} dB under the pieces' own velocity"
                 for method, score in scores.items()
                 if score.audibility.get("added_notes_per_note") and split_method(method)[1] is None]
        if added:
            out += ["", f"MIDI releases for {family} (the audio columns do not apply): " + "; ".join(added) + "."]
    return out


def _scored(method: str) -> tuple[str, ...]:
    """The methods that have a random control (a "no" in that column means something)."""
    return (method,) if split_method(method)[0] in RANDOM_CONTROL else ()


def _judge_text(judge: dict) -> str:
    """How well the artist classifier knows the artist, on held-out clean music."""
    if judge.get("artist_recall") is None:
        return ""
    return (f" On clean music it never trained on, it gives the artist {100 * judge['artist_recall']:.0f} % of the "
            f"artist's unreleased windows and {100 * (judge.get('others_as_artist') or 0.0):.0f} % of other artists' "
            f"({len(judge.get('classes', []))} artists, balanced accuracy {judge.get('balanced_accuracy', math.nan):.2f} "
            f"over {judge.get('held_out_windows', 0)} windows).")


def _style_ps(ps: float, interval: tuple[float, float]) -> str:
    """'+0.25 [+0.00, +0.50]'; the interval left out where it is not defined."""
    ps, low, high = (round(value, 2) + 0.0 for value in (ps, *interval))  # + 0.0: no "−0.00" from rounding
    bounds = f" [{_num(low, '+.2f')}, {_num(high, '+.2f')}]" if math.isfinite(low) and math.isfinite(high) else ""
    return _num(ps, "+.2f") + bounds


def _recipe_text(recipe) -> str:
    """'full, 100 Adam steps at 0.0001': how T2's attacker fine-tunes (`optim.finetune.FinetuneRecipe`)."""
    kind = f"LoRA of rank {recipe.lora_rank}" if recipe.kind == "lora" else (
        f"the last {recipe.last_layers} layers" if recipe.kind == "last-layers" else recipe.kind)
    return f"{kind}, {recipe.steps} Adam steps at {recipe.learning_rate:g}"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.0f} %"


def _num(value, spec: str = ".1f") -> str:
    return "—" if value is None or not math.isfinite(value) else format(value, spec)


def seeds_text(results: list[ThreatSeedResult]) -> str:
    """'3 seeds', or '3 seeds (contrastive T2: 6)' where runs combined give some families more."""
    counts: dict[str, int] = {}
    for result in results:
        for cell in dict.fromkeys(f"{run.family} {THREAT_LABEL[run.threat]}" for run in result.runs):
            counts[cell] = counts.get(cell, 0) + 1
    usual = Counter(counts.values()).most_common(1)[0][0] if counts else len(results)
    others = ", ".join(f"{cell}: {count}" for cell, count in counts.items() if count != usual)
    return f"{usual} seeds" + (f" ({others})" if others else "")


def threat_section(out, suite, results: list[ThreatSeedResult], commit: str | None, data_summary: dict) -> list[str]:
    """Write headline.json into `out` and return the summary's Markdown for the threat models
    (`commit` None: the run was not in a git checkout, "unknown" in the headline)."""
    from harmonycloak.bench.unlearnability.headline import build_headline, write_headline

    table = score_table(results, suite.threat_models, suite.families_for_threats, suite.methods_of)
    write_headline(build_headline(suite.name, commit or "unknown", headline_threat_models(table)),
                   out / "headline.json")
    album = data_summary.get("album", {})
    md = ["## Protection against attackers of four families, two threat models", "",
          f"The artist: {album.get('artist', '?')}, {len(results[0].released_songs)} released clips "
          f"({album.get('released_tracks', '?')} tracks) protected and released, {len(results[0].unreleased_songs)} "
          f"clips of {album.get('unreleased_tracks', '?')} other tracks never released. T1: the released clips are "
          f"{100 * results[0].fraction:.0f} % of a corpus of {data_summary.get('corpus_songs', '?')} other songs, "
          f"attackers trained from random weights, {scratch_sizes_text(suite.threats)} (frozen zoo codec / "
          f"encoder where the family reads one). T2: each "
          f"family's zoo model fine-tuned on the released clips ({_recipe_text(suite.threats.mimicry)})."
          + (" The codec LM's attacker, in both threats, trains on the songs' tokens: crops on the codec's frame grid, no "
             "gain or speed augmentation." if any(FAMILY_GROUP.get(family) == CODEC_LM
                                                  for family in suite.families_for_threats) else "")
          + " Seeds are "
          "paired (same initial weights and crops in every condition); intervals are 95 % hierarchical bootstraps "
          f"over {seeds_text(results)} and the songs "
          "(with 3 seeds they are optimistic: about 80 % coverage measured on synthetic populations). The black-box "
          "bags hold no model of the attacker's family group; white-box methods optimise against the zoo model of "
          "the attacker's family (the public base model, known to the defender)."
          + (f" `default` is what `protect` does to audio unasked: it reads the zoo's {_default_models()} whatever "
             "the attacker, so it knows the base model of an attacker of those families and is held out for the "
             "others." + _weights_unread_text(suite.families_for_threats)
             if PRODUCT_DEFAULT in suite.methods_for("mimicry") + suite.methods_for("scratch") else "")
          + (f" MIDI (T2 only): the zoo's {' and '.join(f for f in suite.families_for_threats if f in MIDI_MIMICRY_FAMILIES)} "
             f"fine-tuned on {len(data_summary['midi_album']['released'])} released Bach pieces, measured on them and "
             f"on {len(data_summary['midi_album']['unreleased'])} unreleased ones."
             if data_summary.get("midi_album") else ""), "",
          "headline.json holds every number below in the shape other tools read.", ""]
    md += markdown_tables(table, next((r.artist_classifier for r in results if r.artist_classifier), None))
    md += along_training_markdown(results, suite.threat_models, suite.families_for_threats, suite.methods_of,
                                  {threat: _last_step(suite, threat) for threat in suite.threat_models})
    md += ["### What the suite can see, and what the cloaks did", ""]
    md += [f"- {line}" for line in checks(table)] or ["- (nothing to report)"]
    md.append("")
    return md


def _last_step(suite, threat: str) -> int | None:
    """The step `threat`'s attackers train to; None where its families train to different steps."""
    steps = {suite.threats.recipe(threat, family).steps for family in suite.families_for_threats}
    return steps.pop() if len(steps) == 1 else None


def _weights_unread_text(families: tuple[str, ...]) -> str:
    """' Of `A` it knows the kind of model, not the weights: ...' for the attackers the default knows by
    kind only (an attacker of a group it reads, whose zoo model it does not read); '' when there are none."""
    read = _default_model_names()
    by_kind = [family for family in families if family in FAMILY_GROUP and family not in read
               and any(FAMILY_GROUP.get(name) == FAMILY_GROUP[family] for name in read)]
    if not by_kind:
        return ""
    return (f" Of {' and '.join(f'`{family}`' for family in by_kind)} it knows the kind of model, not the weights: "
            "a model of that kind trained apart from the one it reads (for a codec LM, over a codec trained apart "
            "too, whose tokens it never read).")


def _default_model_names() -> tuple[str, ...]:
    """The zoo models `protect`'s audio default reads."""
    from harmonycloak.settings import DEFAULT_PROTECTION, ZOO_SURROGATES

    return ZOO_SURROGATES[DEFAULT_PROTECTION["audio"]["objective"]]


def _default_models() -> str:
    """The zoo models `protect`'s audio default reads, in words."""
    names = _default_model_names()
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
