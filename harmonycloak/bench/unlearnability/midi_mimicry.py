"""T2 style mimicry for MIDI: the zoo's MuseGAN and SymphonyNet fine-tuned on one composer's pieces.

The composer is Bach, whom the zoo's symbolic corpus leaves out: the first `released` of the
benchmark's four-part Bach pieces are protected and released, the next `unreleased` never are.
For a seed and a family, as for audio (`threat_experiment`):

  base      the zoo model as it is (L_base)
  none      fine-tuned on the released pieces as they are (L_ft_none)
  METHOD    fine-tuned on their protected versions

Each run keeps its loss on every clean released piece and every unreleased piece (for MuseGAN,
whose loss saturates, its discriminator's negative realness logit: `piece_losses`), in the
audio threat models' `AttackerRun`, so `threat_report` scores MIDI and audio alike. For MuseGAN,
which has no likelihood of a piece, what the fine-tuned generator writes is judged too:
`measures["fd_artist"]`, the Fréchet distance of its bars to the unreleased pieces', and
`measures["artist_share"]`, the share of its sounding bars that a classifier of Bach against the
zoo's own corpus labels Bach (`composer_or_corpus_judge`, `midi_measures.style_measures`; the same
latents for every condition of a seed), which the report turns into style PSs. SymphonyNet is judged
the same way where a suite names it (`MidiMimicrySpec.style_judged`: the full suite, or
`--style-judged`): it continues the first bar of each unreleased piece's phrases (the same draws
for every condition of a seed). Its loss reads its fine-tune directly, and its sampler writes 64
phrases in about 70 s on one core, 28 minutes over the standard suite's conditions and seeds, which
therefore judges MuseGAN alone.

Methods, each a layer of added notes beside the piece (its own notes are untouched):

  positive-wrong-notes   the positive control: every note doubled at a random other pitch,
                         1 to 11 semitones up or down, at its own velocity: plainly audible
  random-midi-cloak      the MIDI cloak's notes (`cloak.midi`) with velocities drawn uniformly
                         inside their bounds (Eq. 7): the bar the optimised cloak must clear
  quietest-midi-cloak    the same notes, each at the lowest velocity its bounds allow: what the
                         notes do without any optimisation, at the level the optimiser ends at
  midi-cloak-whitebox    the MIDI cloak optimised against the zoo model of the attacker's
                         family (the public base model the defender knows)
  midi-cloak-blackbox    the MIDI cloak optimised against the paper's bag of MuseGAN variants
                         with random weights (held out by family for SymphonyNet; for MuseGAN
                         only its weights are unknown to the defender)
  midi-maxloss-whitebox  the same notes, their velocities chosen to raise the zoo model's loss
                         while it is fine-tuned on the protected piece (`--objective maxloss`)

A candidate, measured when named (`--methods`), not in a suite's own list:

  midi-reverse-gradient-whitebox
                         the same notes, their velocities chosen so that a training step of the
                         zoo model on the released piece teaches nothing of the clean piece
                         (`--objective reverse-gradient`, audio's default objective)
  loudest-midi-cloak     the same notes, unoptimised, each at the highest velocity its bounds allow
                         (32 dB under the note it hides behind at medium strength): whether the
                         level the bounds allow, rather than an optimiser, is what protects

The attacker's recipe for a small album: `steps` Adam steps at `learning_rate` on random
phrases of the training pieces, each phrase transposed by a random whole number of semitones
within ±`transpose_semitones` (the augmentation symbolic music models train with). Every
condition of a seed starts from the zoo weights and draws the same phrases and transpositions.

Shapes: phrases (B, M = 4, T, 128) of velocity / 127.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from harmonycloak.bench.unlearnability.threats import AttackerRun

MIDI_MIMICRY_FAMILIES = ("musegan", "symphonynet")
POSITIVE_WRONG_NOTES = "positive-wrong-notes"
RANDOM_MIDI_CLOAK = "random-midi-cloak"
QUIETEST_MIDI_CLOAK = "quietest-midi-cloak"
LOUDEST_MIDI_CLOAK = "loudest-midi-cloak"
MIDI_MIMICRY_METHODS = ("none", POSITIVE_WRONG_NOTES, RANDOM_MIDI_CLOAK, "midi-cloak-whitebox", "midi-cloak-blackbox",
                        "midi-maxloss-whitebox", QUIETEST_MIDI_CLOAK)  # a suite's own
MIDI_CANDIDATE_METHODS = ("midi-reverse-gradient-whitebox", LOUDEST_MIDI_CLOAK)  # measured when named
KNOWN_MIDI_MIMICRY_METHODS = MIDI_MIMICRY_METHODS + MIDI_CANDIDATE_METHODS  # every MIDI method the benchmark knows
MIDI_RANDOM_CONTROL = {"midi-cloak-whitebox": RANDOM_MIDI_CLOAK, "midi-cloak-blackbox": RANDOM_MIDI_CLOAK,
                       "midi-maxloss-whitebox": RANDOM_MIDI_CLOAK, "midi-reverse-gradient-whitebox": RANDOM_MIDI_CLOAK,
                       LOUDEST_MIDI_CLOAK: RANDOM_MIDI_CLOAK}
# The bar at the cloaks' own level: their optimisers end with (nearly) every note at its lowest velocity
LEVEL_CONTROL = dict.fromkeys(set(MIDI_RANDOM_CONTROL) - {LOUDEST_MIDI_CLOAK}, QUIETEST_MIDI_CLOAK)
WHITEBOX_OBJECTIVE = {"midi-cloak-whitebox": "minmin", "midi-maxloss-whitebox": "maxloss",
                      "midi-reverse-gradient-whitebox": "reverse-gradient"}
WRONG_NOTE_MAX_SEMITONES = 11  # the positive control's notes sit 1 to this many semitones off
JUDGE_BACH_FILES = 40  # Bach files of the music21 corpus the style judge learns the composer from


@dataclass(frozen=True)
class MidiMimicrySpec:
    """The MIDI style-mimicry threat of a suite."""

    released: int = 8  # Bach pieces protected and released
    unreleased: int = 6  # Bach pieces never released (style, not copies)
    max_bars: int = 8  # pieces are cut to their first bars (the cost of the cloak)
    methods: tuple[str, ...] = MIDI_MIMICRY_METHODS
    steps: int = 100  # fine-tuning steps
    learning_rate: float = 1e-4  # a tenth of the zoo's training rate, as for audio
    batch_segments: int = 8
    transpose_semitones: int = 3  # each training phrase moves by a random shift in ±this
    generated_phrases: int = 64  # phrases each fine-tuned model writes for the style measure
    style_judged: tuple[str, ...] = ("musegan",)  # families whose written music the style measures judge
    # The cloak's optimisation effort (the one min-min loop), as the audio releases' at this suite
    pgd_steps: int = 6
    max_rounds: int = 1
    bag_size: int = 4
    models_per_round: int = 3
    bag_preset: str = "tiny"  # the black-box bag's MuseGAN variants

    def __post_init__(self) -> None:
        from harmonycloak.errors import SettingsError

        unknown = [method for method in self.methods if method not in KNOWN_MIDI_MIMICRY_METHODS]
        if unknown:
            raise SettingsError(f"unknown MIDI protection method '{unknown[0]}' "
                                f"(known: {', '.join(KNOWN_MIDI_MIMICRY_METHODS)})")
        if not set(self.style_judged) <= set(MIDI_MIMICRY_FAMILIES):
            raise SettingsError(f"only the MIDI families {', '.join(MIDI_MIMICRY_FAMILIES)} write music the style "
                                "measures judge")
        if self.released < 1 or self.unreleased < 1:
            raise SettingsError("the MIDI album needs at least one released and one unreleased piece")


def with_midi_controls(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The MIDI methods among `methods`, after "none" and each one's controls (random, and at its
    level); () when none is MIDI."""
    from harmonycloak.bench.unlearnability.releases import with_controls

    chosen = tuple(method for method in methods if method in KNOWN_MIDI_MIMICRY_METHODS)
    if not chosen:
        return ()
    return with_controls(chosen, lambda name: (MIDI_RANDOM_CONTROL.get(name), LEVEL_CONTROL.get(name)))


@dataclass
class MidiAlbum:
    """The composer's pieces: (name, Score) released and never released."""

    released: list[tuple[str, object]]
    unreleased: list[tuple[str, object]]


def load_midi_album(spec: MidiMimicrySpec) -> MidiAlbum:
    """The benchmark's four-part Bach pieces, cut to `max_bars`, in a fixed order.

    Raises:
        SettingsError: the corpus has too few of them.
    """
    from harmonycloak.bench.unlearnability.midi import MidiSpec, load_scores
    from harmonycloak.errors import SettingsError

    wanted = spec.released + spec.unreleased
    pieces = load_scores(MidiSpec(pieces_per_composer=(("bach", wanted),), max_bars=spec.max_bars))
    if len(pieces) < wanted:
        raise SettingsError(f"the MIDI album needs {wanted} four-part Bach pieces; the corpus gave {len(pieces)}")
    named = [(name, score) for name, _, score in pieces]
    return MidiAlbum(named[: spec.released], named[spec.released: wanted])


def wrong_notes(score, seed: int):
    """The positive control: `score` with every pitched note doubled on a layer beside its track,
    1 to `WRONG_NOTE_MAX_SEMITONES` semitones up or down (kept in 0–127), at its own velocity
    and timing. The layer has its track's name and program, as the cloak's does."""
    from harmonycloak.music import Notes, Track

    rng = np.random.default_rng(seed)
    protected = score.copy()
    layers = []
    for track in score.tracks:
        notes = track.notes
        if track.is_drum or not len(notes):
            continue
        steps = rng.integers(1, WRONG_NOTE_MAX_SEMITONES + 1, len(notes)) * rng.choice((-1, 1), len(notes))
        pitch = notes.pitch.astype(np.int64) + steps
        pitch = np.where((pitch < 0) | (pitch > 127), notes.pitch.astype(np.int64) - steps, pitch)
        layers.append(Track(name=track.name, program=track.program, is_drum=False, port=track.port,
                            notes=Notes.from_arrays(pitch, notes.velocity, notes.start_tick, notes.end_tick)))
    protected.tracks = protected.tracks + layers
    return protected


def random_midi_cloak(score, steps_per_beat: int, strength: str, seed: int):
    """The random control: the MIDI cloak's added notes for `score`, each velocity drawn
    uniformly inside its bounds (Eq. 7), as `cloak.midi.protected_score` writes them."""
    return midi_cloak_at(score, steps_per_beat, strength, lambda runs: torch.rand(
        runs, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))


def midi_cloak_at(score, steps_per_beat: int, strength: str, place):
    """The MIDI cloak's added notes for `score`, unoptimised, each velocity at its `place` inside its
    bounds: 0 the lowest its bounds allow, 1 the highest, or a function of the number of notes giving
    each note's place (float64 tensor)."""
    from harmonycloak.cloak.midi import MidiCloakSettings, MidiDominantCloak, protected_score
    from harmonycloak.settings import headroom_db

    cloak = MidiDominantCloak(score, steps_per_beat, MidiCloakSettings(headroom_db=headroom_db("midi", strength)))
    share = place(cloak.num_runs) if callable(place) else torch.full((cloak.num_runs,), float(place), dtype=torch.float64)
    share = share.clamp(1e-6, 1 - 1e-6)
    with torch.no_grad():
        cloak.velocity_logit.copy_(torch.log(share / (1 - share)).float())  # sigmoid⁻¹: each velocity at its place
    return protected_score(score, cloak)


def release_pieces(method: str, scores: list, family: str, spec: MidiMimicrySpec, seed: int,
                   strength: str = "medium") -> tuple[list, float, dict]:
    """The released versions of `scores` under `method`, the seconds it took, and what the
    optimiser reported (per piece)."""
    from harmonycloak.bench.unlearnability.midi import MidiSpec, cloak_pieces
    from harmonycloak.flows.midi.protect import cloak_score
    from harmonycloak.settings import ProtectionSettings
    from harmonycloak.zoo import load_zoo_model

    started = time.perf_counter()
    if method == "none":
        return list(scores), 0.0, {}
    if method == POSITIVE_WRONG_NOTES:
        return [wrong_notes(score, seed * 1000 + index) for index, score in enumerate(scores)], \
            time.perf_counter() - started, {}
    effort = dict(pgd_steps=spec.pgd_steps, max_rounds=spec.max_rounds, bag_size=spec.bag_size,
                  models_per_round=spec.models_per_round)
    if method in (RANDOM_MIDI_CLOAK, QUIETEST_MIDI_CLOAK, LOUDEST_MIDI_CLOAK):
        steps_per_beat = load_zoo_model(family).phrase_layout.steps_per_beat
        out = [random_midi_cloak(score, steps_per_beat, strength, seed * 1000 + index) if method == RANDOM_MIDI_CLOAK
               else midi_cloak_at(score, steps_per_beat, strength, 1.0 if method == LOUDEST_MIDI_CLOAK else 0.0)
               for index, score in enumerate(scores)]
        return out, time.perf_counter() - started, {}
    if method == "midi-cloak-blackbox":
        out, _, info = cloak_pieces("cloak-blackbox", scores, family, MidiSpec(preset=spec.bag_preset, **effort), seed)
        return out, time.perf_counter() - started, info
    out, summaries = [], []
    for score in scores:  # white-box: a fresh copy of the public base model for every piece
        settings = ProtectionSettings(mode="whitebox", model=load_zoo_model(family), seed=seed, device="cpu",
                                      strength=strength, objective=WHITEBOX_OBJECTIVE[method], **effort)
        outcome = cloak_score(score, settings)
        out.append(outcome.protected)
        summaries.append(outcome.summary["surrogate_loss_after"])
    return out, time.perf_counter() - started, {"surrogate_loss_after": summaries}


def added_notes(clean: list, released: list) -> dict:
    """How much a release adds: added notes per note of the piece, and the median velocity of
    the added notes below the median of the piece's own (DLS dB, 40 log10 of the ratio)."""
    own = np.concatenate([t.notes.velocity for s in clean for t in s.tracks if len(t.notes)]).astype(np.float64)
    added = [t.notes.velocity for c, r in zip(clean, released) for t in r.tracks[len(c.tracks):] if len(t.notes)]
    if not added:
        return {"added_notes_per_note": 0.0}
    added = np.concatenate(added).astype(np.float64)
    return {"added_notes_per_note": len(added) / len(own),
            "added_below_own_db": float(40 * np.log10(np.median(own) / max(np.median(added), 1.0)))}


def piece_losses(model, scores: list) -> list[float]:
    """What the model learned of each piece, the mean over the phrases tiling it (eval mode, no
    gradients): SymphonyNet's loss; for MuseGAN the discriminator's negative realness logit −z.

    MuseGAN's loss is −log D = softplus(−z), and the zoo's discriminator calls Bach real with
    z ≈ 22, where softplus(−z) ≈ e^(−z) ≈ 10⁻¹⁰: every difference between conditions falls under
    what a score can resolve. −z orders pieces the same way (softplus is increasing) without
    saturating."""
    from harmonycloak.cloak.model_input import score_phrases

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = []
            for score in scores:
                phrases = score_phrases(score, model.phrase_layout)
                if model.family == "musegan":
                    out.append(float(-model.discriminator_logits(model.features(phrases)).mean()))
                else:
                    out.append(float(model.generative_loss(phrases).mean()))
            return out
    finally:
        model.train(was_training)


def transposed(phrases: torch.Tensor, semitones: torch.Tensor) -> torch.Tensor:
    """(B, M, T, 128) phrases, each moved by its (B,) whole semitones; notes moved past either
    end of the keyboard are dropped."""
    out = torch.zeros_like(phrases)
    for index, shift in enumerate(semitones.tolist()):
        if shift >= 0:
            out[index, ..., shift:] = phrases[index, ..., : phrases.shape[-1] - shift]
        else:
            out[index, ..., :shift] = phrases[index, ..., -shift:]
    return out


def finetuned(family: str, scores: list, spec: MidiMimicrySpec, seed: int):
    """The zoo model of `family` fine-tuned on `scores` by the attacker's recipe (module docstring),
    and its training curve; no scores: the zoo model as it is."""
    from harmonycloak.cloak.model_input import scores_phrases
    from harmonycloak.models.musegan import train_musegan
    from harmonycloak.optim.training import train_generative_model
    from harmonycloak.zoo import load_zoo_model

    model = load_zoo_model(family)
    if not scores:
        return model, []
    model.train()
    phrases = scores_phrases(scores, model.phrase_layout)
    shifts = torch.Generator().manual_seed(seed + 1)
    width = spec.transpose_semitones

    def batch(ids: torch.Tensor) -> torch.Tensor:
        return transposed(phrases[ids], torch.randint(-width, width + 1, (len(ids),), generator=shifts))

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout inside the networks
    if family == "musegan":
        curve = [float(losses.discriminator) for losses in train_musegan(
            model, batch, len(phrases), spec.steps, generator, spec.batch_segments, spec.learning_rate)]
    else:
        curve = train_generative_model(model, batch, len(phrases), spec.steps, generator, spec.batch_segments,
                                       spec.learning_rate)
    return model, curve


def composer_or_corpus_judge(seed: int, steps_per_beat: int = 4):
    """A `metrics.style.StyleClassifier` (logistic regression, classes balanced, `seed`) of two
    classes, ("bach", "corpus"): whether a bar is the composer's or the music the zoo's symbolic
    models learnt before any fine-tune. Trained at `steps_per_beat` on the sounding 4/4 bars of
    `JUDGE_BACH_FILES` files of music21's Bach collection (the album's pieces among them), and
    of the zoo corpus's held-out phrases (music of the corpus the zoo models never trained on)."""
    from harmonycloak.bench.unlearnability.midi_measures import bar_segments
    from harmonycloak.metrics.style import StyleClassifier, StyleClassifierConfig, corpus_segments
    from harmonycloak.zoo.symbolic_corpus import load_phrases

    steps_per_bar = 4 * 3 * steps_per_beat  # the corpus's phrases at three times the judge's resolution
    phrases, _ = load_phrases("heldout", steps_per_bar, 4)
    corpus = bar_segments(torch.from_numpy(phrases), steps_per_bar, steps_per_beat).max(axis=1, keepdims=True)
    corpus = corpus[(corpus > 0).reshape(corpus.shape[0], -1).any(axis=1)]  # tracks merged, as the judge reads them
    bach, _ = corpus_segments("bach", limit=JUDGE_BACH_FILES, steps_per_beat=steps_per_beat)
    rolls = np.concatenate([bach, corpus.astype(np.float32)])
    labels = np.concatenate([np.zeros(len(bach), np.int64), np.ones(len(corpus), np.int64)])
    return StyleClassifier.fit(rolls, labels, ("bach", "corpus"),
                               StyleClassifierConfig(steps_per_beat=steps_per_beat, hidden=0, seed=seed))


def run_midi_mimicry(family: str, album: MidiAlbum, spec: MidiMimicrySpec, seed: int, strength: str = "medium",
                     log=print) -> tuple[list[AttackerRun], dict[str, dict]]:
    """Every condition of one family and seed: the runs, and per method what its release added
    and cost (`{"audibility": ..., "cost_s_per_song": ..., "summary": ...}`)."""
    from harmonycloak.bench.unlearnability.midi_measures import style_measures
    from harmonycloak.cloak.model_input import scores_phrases

    released_clean = [score for _, score in album.released]
    probes = {"released": released_clean, "unreleased": [score for _, score in album.unreleased]}
    runs, records = [], {}
    judged = family in spec.style_judged
    judge = composer_or_corpus_judge(seed) if judged else None
    for condition in ("base",) + tuple(dict.fromkeys(("none",) + spec.methods)):  # references first
        started = time.perf_counter()
        if condition == "base":
            training = []
        else:
            training, elapsed_s, summary = release_pieces(condition, released_clean, family, spec, seed, strength)
            records[condition] = {"audibility": added_notes(released_clean, training),
                                  "cost_s_per_song": elapsed_s / len(released_clean), "summary": summary}
        model, curve = finetuned(family, training, spec, seed)
        losses = {name: piece_losses(model, scores) for name, scores in probes.items()}
        measures = {}
        if judged:
            measures = style_measures(model, family, scores_phrases(probes["unreleased"], model.phrase_layout),
                                      spec.generated_phrases, model.phrase_layout.steps_per_bar, seed, judge)
        runs.append(AttackerRun("mimicry", family, condition, seed, losses, curve, time.perf_counter() - started,
                                measures=measures))
        written = (f", FD to the composer {measures['fd_artist']:.4f}, labelled the composer "
                   f"{measures['artist_share']:.2f}") if measures else ""
        log(f"  seed {seed} mimicry {family} {condition}: released {runs[-1].mean_loss('released'):.4f}{written} "
            f"({runs[-1].elapsed_s:.0f} s)")
    return runs, records
