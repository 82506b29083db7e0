"""The MIDI side of the benchmark: MuseGAN and SymphonyNet attackers on corpus pieces (paper Table 2).

Songs are four-part pieces of the music21 corpus (Bach chorales, Palestrina by range) as
`Score`s. The protected pieces are cloaked with the MIDI cloak (`flows.midi.protect.cloak_score`:
quiet notes at each window's dominant note, the one min-min loop), and the attacker reads
them as it would read the protected files: the score's piano roll at its own resolution with
the cloak layers folded into their tracks (`cloak.model_input.score_phrases`).

Conditions and seeds as for audio (`experiment.run_seed`): clean, unseen and each method,
paired initial weights; results use the same schema, so `report` scores them the same way.
Black-box: the paper's bag of MuseGAN variants; the attacker's own architecture is left out
of it (the default MuseGAN preset is the bag's first variant), and the results say so.

Losses: SymphonyNet's next-step negative log-likelihood; MuseGAN's discriminator loss on
real data, −log D(x) (`MuseGanModel.generative_loss`): for a GAN, "what the model learned of
a song" is how real its discriminator finds it. What each trained attacker generates is
judged by `midi_measures` (Tables 3 and 4).

The MIDI cloak runs on the GPU when there is one (`flows.midi.protect.cloak_score`); the MIDI
attackers train on the CPU (they are small; the audio attackers use the GPU).

Shapes: phrases (B, M, T, 128), velocities / 127.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from harmonycloak.bench.unlearnability.results import SeedResult, TrainingResult
from harmonycloak.bench.unlearnability.runs import mean_loss
from harmonycloak.cloak.model_input import longest_bar_steps, scores_phrases
from harmonycloak.models.interface import SymbolicModel
from harmonycloak.models.registry import symbolic_model
from harmonycloak.settings import DEFAULT_WINDOW_MS

MIDI_FAMILIES = ("musegan", "symphonynet")
MIDI_METHODS = ("none", "cloak-whitebox", "cloak-blackbox")


@dataclass(frozen=True)
class MidiSpec:
    """The MIDI part of a suite."""

    pieces_per_composer: tuple[tuple[str, int], ...] = (("bach", 10),)  # four tracks, bars ≤ 4/4
    families: tuple[str, ...] = MIDI_FAMILIES
    methods: tuple[str, ...] = MIDI_METHODS
    preset: str = "tiny"  # attackers' and surrogates' size
    steps: int = 100  # attacker training steps
    batch_segments: int = 8
    evaluate_every: int = 25
    max_bars: int = 8  # pieces are cut to their first bars (cost of the cloak)
    pgd_steps: int = 5
    max_rounds: int = 1
    bag_size: int = 4
    models_per_round: int = 3
    musegan_learning_rate: float = 1e-3  # Adam (paper §5.1: 1e-4 for the full-size model; tiny ones need more)
    symphonynet_learning_rate: float = 1e-3  # (paper: 3e-4)
    generated_phrases: int = 8  # phrases each judged attacker writes (midi_measures; 0: none)
    judged_conditions: tuple[str, ...] = ("clean", "cloak-whitebox", "cloak-blackbox", "unseen")


def load_scores(spec: MidiSpec) -> list[tuple[str, str, object]]:
    """(name, composer, Score cut to `max_bars`) of four-track pieces, in a fixed order."""
    from harmonycloak.corpus import load_collection

    out = []
    for composer, count in spec.pieces_per_composer:
        # Four tracks, and no bar longer than 4/4: the models' bar slots (Palestrina's breve bars are left out).
        pieces = [p for p in load_collection(composer, limit=6 * count)
                  if len(p.score.tracks) == 4 and p.score.num_notes and longest_bar_steps(p.score, 1) <= 4]
        for piece in pieces[:count]:
            out.append((piece.name, composer, first_bars(piece.score, spec.max_bars)))
    return out


def first_bars(score, bars: int):
    """The score's first `bars` bars (notes starting there, cut at the bar line)."""
    if len(score.bar_lines_tick) <= bars + 1:
        return score
    from harmonycloak.music import Notes

    end_tick = int(score.bar_lines_tick[bars])
    cut = score.copy()
    for track in cut.tracks:
        notes, keep = track.notes, track.notes.start_tick < end_tick
        track.notes = Notes.from_arrays(notes.pitch[keep], notes.velocity[keep], notes.start_tick[keep],
                                        np.minimum(notes.end_tick[keep], end_tick))
    cut.bar_lines_tick = score.bar_lines_tick[: bars + 1].copy()
    cut.source_midi = None
    return cut


def attacker(family: str, spec: MidiSpec, seed: int, tracks: int = 4) -> SymbolicModel:
    """A fresh MIDI model of `family` for `tracks` tracks; the seed decides its weights."""
    return symbolic_model(family, spec.preset, seed=seed, tracks=tracks)


def bag_variants_without_target(family: str, spec: MidiSpec, phrase) -> list[int]:
    """Indices of the first `spec.bag_size` MuseGAN bag variants (reading `phrase`) that are not the
    attacker's architecture: for a MuseGAN target of the default preset, the bag's first variant goes."""
    from harmonycloak.models.bag import musegan_bag_configs

    configs = musegan_bag_configs(10, spec.preset == "tiny", phrase)
    target = attacker(family, spec, 0).config
    return [i for i, c in enumerate(configs)
            if family != "musegan" or replace(c, phrase=target.phrase) != target][: spec.bag_size]


def cloak_pieces(method: str, scores: list, family: str, spec: MidiSpec, seed: int) -> tuple[list, float, dict]:
    """Protected versions of `scores` (each cloaked on its own), seconds taken, and what the bag held."""
    from harmonycloak.flows.midi.protect import MidiSurrogates, blackbox_layout, cloak_score
    from harmonycloak.models.bag import build_musegan_bag, musegan_bag_phrase
    from harmonycloak.settings import ProtectionSettings, resolve_device

    if method == "none":
        return list(scores), 0.0, {}
    started, out, info = time.perf_counter(), [], {}
    base = dict(seed=seed, device="auto", bag_size=spec.bag_size, models_per_round=spec.models_per_round,
                model_preset=spec.preset, pgd_steps=spec.pgd_steps, max_rounds=spec.max_rounds)
    tiny = spec.preset == "tiny"
    for score in scores:
        if method == "cloak-whitebox":
            target = attacker(family, spec, seed + 7919, len(score.tracks))
            outcome = cloak_score(score, ProtectionSettings(mode="whitebox", model=target, **base))
        else:
            layout = blackbox_layout(score, tiny)
            phrase = musegan_bag_phrase(len(score.tracks), tiny, layout.steps_per_bar)
            keep = bag_variants_without_target(family, spec, phrase)
            bag = build_musegan_bag(10, seed, tiny, phrase)
            info = {"bag_variants": keep, "target_architecture_in_bag": False}
            device = resolve_device("auto")
            surrogates = MidiSurrogates([bag[i].to(device) for i in keep], "musegan", layout)
            outcome = cloak_score(score, ProtectionSettings(mode="blackbox", **base), surrogates=surrogates)
        out.append(outcome.protected)
    return out, time.perf_counter() - started, info


def train_midi_attacker(family: str, condition: str, training: list, probes: dict[str, list], spec: MidiSpec,
                        seed: int) -> TrainingResult:
    """Train a fresh MIDI attacker on `training` scores; probe losses every `evaluate_every` steps.

    Attackers of `spec.judged_conditions` then write music, measured against the clean
    protected pieces (`probes["protected_clean"]`) by `midi_measures.judge_midi_model`.
    """
    from harmonycloak.bench.unlearnability.midi_measures import judge_midi_model
    from harmonycloak.models.musegan import train_musegan
    from harmonycloak.optim.training import train_generative_model

    started = time.perf_counter()
    model = attacker(family, spec, seed)
    layout = model.phrase_layout
    data = scores_phrases(training, layout)
    probe_phrases = {name: scores_phrases(scores, layout) for name, scores in probes.items()}
    curves: dict[str, list[float]] = {name: [] for name in probe_phrases}

    def evaluate(trained) -> float:
        torch.manual_seed(seed)  # MuseGAN's loss is deterministic; this keeps any sampling so too
        for name, phrases in probe_phrases.items():
            curves[name].append(mean_loss(trained, phrases))
        return curves["protected_clean"][-1]

    evaluate(model)
    generator = torch.Generator().manual_seed(seed)
    evaluations = [0]
    if len(data):
        if family == "musegan":
            for chunk_end in range(spec.evaluate_every, spec.steps + spec.evaluate_every, spec.evaluate_every):
                chunk = min(chunk_end, spec.steps) - evaluations[-1]
                if chunk <= 0:
                    break
                # Adam state restarts per chunk (train_musegan has no evaluation hook); documented deviation.
                train_musegan(model, lambda ids: data[ids], len(data), chunk, generator, spec.batch_segments,
                              learning_rate=spec.musegan_learning_rate)
                evaluations.append(evaluations[-1] + chunk)
                evaluate(model)
        else:
            train_generative_model(model, lambda ids: data[ids], len(data), spec.steps, generator,
                                   batch_segments=spec.batch_segments, learning_rate=spec.symphonynet_learning_rate,
                                   evaluate=evaluate,
                                   evaluate_every=spec.evaluate_every)
            evaluations += [s for s in range(1, spec.steps + 1) if s % spec.evaluate_every == 0 or s == spec.steps]
    final = {name: values[-1] for name, values in curves.items()}
    measures = (judge_midi_model(model, family, probe_phrases["protected_clean"], spec.generated_phrases,
                                 layout.steps_per_bar, seed)
                if spec.generated_phrases and condition in spec.judged_conditions else {})
    return TrainingResult(family, condition, seed, final, curves, evaluations, time.perf_counter() - started,
                          measures)


def protected_reference(family: str, spec: MidiSpec, scores: list) -> dict:
    """Table 3/4 metrics of the clean protected `scores` as a `family` attacker reads them."""
    from harmonycloak.bench.unlearnability.midi_measures import reference_measures

    model = attacker(family, spec, 0)
    return reference_measures(model, scores_phrases(scores, model.phrase_layout), model.phrase_layout.steps_per_bar)


def run_midi_seed(spec: MidiSpec, pieces: list, seed: int, fraction: float, log=print) -> SeedResult:
    """Every MIDI family × method for one seed (tag "main"), as the audio experiment's `SeedResult`."""
    from harmonycloak.bench.unlearnability.experiment import protected_indices

    chosen = protected_indices(len(pieces), fraction, seed)
    clean_protected = [pieces[i][2] for i in chosen]
    others = [p[2] for i, p in enumerate(pieces) if i not in chosen]
    result = SeedResult(seed, "main", "midi", fraction, DEFAULT_WINDOW_MS, [pieces[i][0] for i in chosen])
    for family in spec.families:
        probes = {"protected_clean": clean_protected, "others_clean": others}
        if spec.generated_phrases:
            result.reference_measures_by_family[family] = protected_reference(family, spec, clean_protected)
        runs = [train_midi_attacker(family, "clean", others + clean_protected,
                                    {**probes, "protected_as_trained": clean_protected}, spec, seed),
                train_midi_attacker(family, "unseen", others, probes, spec, seed)]
        for method in spec.methods:
            released, elapsed_s, info = cloak_pieces(method, clean_protected, family, spec, seed)
            entry = result.method(method)
            entry.cost_s_per_song[family] = elapsed_s / len(clean_protected)
            entry.summary[family] = info
            runs.append(train_midi_attacker(family, method, others + released,
                                            {**probes, "protected_as_trained": released}, spec, seed))
            log(f"  seed {seed} midi {family} {method}: {runs[-1].final_loss['protected_clean']:.4f} "
                f"(clean {runs[0].final_loss['protected_clean']:.4f}, unseen {runs[1].final_loss['protected_clean']:.4f})")
        result.runs.extend(runs)
    return result
