"""A composer/style classifier over piano rolls, for the style-unlearnability experiments of
paper §5.2.4 and §5.2.6 (Fig. 8 and 10: a classifier trained on clean music labels the music
a generative model writes; if the model did not learn the protected style, the classifier
rarely finds it).

The paper classifies genres of the Lakh MIDI dataset; our offline data are the music21 corpus
collections, so the classes are composers/styles: Bach chorales, Palestrina masses,
Monteverdi madrigals and Essen folk songs (`corpus_segments`).

Model: hand-made features of a segment (`style_features`) → standardisation → a small MLP
(one hidden layer; logistic regression with ``hidden=0``), trained full-batch with Adam on
class-balanced cross-entropy. Features are used rather than a CNN over the roll because the
classes must be told apart from a few hundred segments in seconds on a CPU, and every feature
has a meaning one can check. Tracks are merged (max over tracks) before the features, so
rolls with any number of tracks (MuseGAN's, SymphonyNet's, a one-track transcription of
audio, `metrics.transcription`) are classified alike.

Features of one segment (tracks merged; ``active`` = velocity > 0), all independent of the
segment's length:
- pitch-class distribution (12): `metrics.symbolic.bar_chroma`, divided by its sum;
- pitch distribution (128): active cells per MIDI pitch, divided by the sum;
- polyphony (7): share of steps sounding 0, 1, ..., 5, and ≥ 6 pitches;
- note lengths (6): share of notes lasting ≤ ¼, ≤ ½, ≤ 1, ≤ 2, ≤ 4, > 4 beats (notes as in
  `metrics.symbolic`: maximal runs of one pitch);
- onset position in the beat (``steps_per_beat``): share of note onsets on each step of a beat;
- density and register (3): onsets per beat / 4, mean active pitch / 127, its standard
  deviation / 24.
An empty segment has all-zero distributions.

Deterministic: equal data, config and seed give equal weights and probabilities (CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harmonycloak.errors import SettingsError
from harmonycloak.metrics.symbolic import NUM_PITCHES, _notes, bar_chroma

DEFAULT_STYLES = ("bach", "palestrina", "monteverdi", "essen")
NOTE_LENGTH_EDGES_BEATS = (0.25, 0.5, 1.0, 2.0, 4.0)
MAX_POLYPHONY = 6


def _merged_activity(rolls: np.ndarray) -> np.ndarray:
    """rolls (examples, tracks, steps, 128) → bool (examples, steps, 128), tracks merged."""
    rolls = np.asarray(rolls)
    if rolls.ndim != 4 or rolls.shape[-1] != NUM_PITCHES or rolls.shape[2] < 1:
        raise SettingsError(f"rolls must have shape (examples, tracks, steps ≥ 1, 128); got {rolls.shape}")
    return (rolls > 0).any(axis=1)


def style_features(rolls: np.ndarray, steps_per_beat: int = 4) -> np.ndarray:
    """Features of each segment (see the module docstring): float32 (examples, 156 + steps_per_beat).

    Args:
        rolls: (examples, tracks, steps, 128) velocities or activity; any number of tracks
            and steps (a 4/4 bar at 4 steps per beat is 16 steps).
        steps_per_beat: the rolls' resolution.
    """
    if steps_per_beat < 1:
        raise SettingsError(f"steps_per_beat must be ≥ 1, not {steps_per_beat}")
    active = _merged_activity(rolls)  # (E, S, 128)
    examples, steps = active.shape[0], active.shape[1]

    def share(counts: np.ndarray) -> np.ndarray:  # rows divided by their sums; zero rows stay zero
        total = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, total, out=np.zeros_like(counts, dtype=np.float64), where=total > 0)

    chroma = share(bar_chroma(active))  # each example is one "bar": (E, 12)
    pitches = share(active.sum(axis=1).astype(np.float64))  # (E, 128)
    voices = np.minimum(active.sum(axis=2), MAX_POLYPHONY)  # (E, S)
    polyphony = share(np.stack([(voices == k).sum(axis=1) for k in range(MAX_POLYPHONY + 1)], axis=1).astype(np.float64))
    lengths = np.zeros((examples, len(NOTE_LENGTH_EDGES_BEATS) + 1))
    onset_phase = np.zeros((examples, steps_per_beat))
    density = np.zeros((examples, 3))
    pitch_numbers = np.arange(NUM_PITCHES)
    for index in range(examples):
        onset_step, length_steps, _ = _notes(active[index][None])
        bins = np.searchsorted(NOTE_LENGTH_EDGES_BEATS, length_steps / steps_per_beat, side="left")
        lengths[index] = np.bincount(bins, minlength=lengths.shape[1])
        onset_phase[index] = np.bincount(onset_step % steps_per_beat, minlength=steps_per_beat)
        weights = pitches[index]
        mean = float(weights @ pitch_numbers)
        spread = float(np.sqrt(max(weights @ (pitch_numbers - mean) ** 2, 0.0)))
        density[index] = [len(onset_step) / (steps / steps_per_beat) / 4.0, mean / 127.0, spread / 24.0]
    return np.concatenate(
        [chroma, pitches, polyphony, share(lengths), share(onset_phase), density], axis=1
    ).astype(np.float32)


@dataclass(frozen=True)
class StyleClassifierConfig:
    steps_per_beat: int = 4  # resolution of the rolls it reads
    hidden: int = 64  # hidden units; 0 for multinomial logistic regression
    epochs: int = 300  # full-batch Adam steps
    learning_rate: float = 0.01
    weight_decay: float = 1e-3  # L2 on all weights (AdamW's decoupled decay)
    seed: int = 0  # initial weights


class StyleClassifier:
    """Composer/style classifier over piano-roll segments; build it with `fit`.

    Attributes:
        classes: class names, in the order of `predict_proba`'s columns.
        config: as given to `fit`.
    """

    def __init__(self, classes: tuple[str, ...], config: StyleClassifierConfig, network: nn.Module,
                 feature_mean: np.ndarray, feature_scale: np.ndarray) -> None:
        self.classes = tuple(classes)
        self.config = config
        self.network = network.eval()
        self.feature_mean = feature_mean
        self.feature_scale = feature_scale

    @classmethod
    def fit(cls, rolls: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
            config: StyleClassifierConfig = StyleClassifierConfig()) -> "StyleClassifier":
        """Train on rolls (examples, tracks, steps, 128) with integer labels (examples,) indexing
        ``classes``. Classes are weighted by 1 / their count (balanced), so a large class
        (thousands of folk songs) does not drown a small one.

        Raises:
            SettingsError: labels out of range, a class without examples, or mismatched sizes.
        """
        return cls.fit_features(style_features(rolls, config.steps_per_beat), labels, classes, config)

    @classmethod
    def fit_features(cls, features: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
                     config: StyleClassifierConfig = StyleClassifierConfig()) -> "StyleClassifier":
        """`fit` on precomputed `style_features` (examples, dim)."""
        labels = np.asarray(labels, dtype=np.int64)
        if features.shape[0] != labels.shape[0]:
            raise SettingsError(f"{features.shape[0]} examples but {labels.shape[0]} labels")
        counts = np.bincount(labels, minlength=len(classes)) if len(labels) else np.zeros(len(classes), int)
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(classes) or (counts == 0).any():
            raise SettingsError(f"every class of {classes} needs examples, and labels must index them; counts {counts.tolist()}")
        mean = features.mean(axis=0)
        scale = features.std(axis=0) + 1e-6
        inputs = torch.from_numpy((features - mean) / scale).float()
        targets = torch.from_numpy(labels)
        weights = torch.from_numpy(len(labels) / (len(classes) * counts)).float()
        with torch.random.fork_rng(devices=[]):  # seed only this model's initialisation
            torch.manual_seed(config.seed)
            if config.hidden > 0:
                network = nn.Sequential(nn.Linear(inputs.shape[1], config.hidden), nn.ReLU(), nn.Linear(config.hidden, len(classes)))
            else:
                network = nn.Sequential(nn.Linear(inputs.shape[1], len(classes)))
        optimiser = torch.optim.AdamW(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        loss_function = nn.CrossEntropyLoss(weight=weights)
        network.train()
        for _ in range(config.epochs):
            optimiser.zero_grad(set_to_none=True)
            loss = loss_function(network(inputs), targets)
            loss.backward()
            optimiser.step()
        return cls(classes, config, network, mean, scale)

    def predict_proba(self, rolls: np.ndarray) -> np.ndarray:
        """Class probabilities of rolls (examples, tracks, steps, 128): float64 (examples, classes),
        rows summing to 1."""
        return self.predict_proba_features(style_features(rolls, self.config.steps_per_beat))

    def predict_proba_features(self, features: np.ndarray) -> np.ndarray:
        """`predict_proba` on precomputed `style_features` (examples, dim)."""
        inputs = torch.from_numpy((features - self.feature_mean) / self.feature_scale).float()
        with torch.no_grad():
            return torch.softmax(self.network(inputs), dim=1).double().numpy()

    def predict(self, rolls: np.ndarray) -> np.ndarray:
        """Most probable class index of each roll, int64 (examples,)."""
        return self.predict_proba(rolls).argmax(axis=1)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts int64 (true class, predicted class), as the paper's Fig. 8 and 10 (which show
    each row divided by its sum)."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


# --- Real data: the music21 corpus ------------------------------------------------------------


def corpus_segments(
    collection: str,
    *,
    limit: int | None = None,
    steps_per_beat: int = 4,
    segment_beats: int = 4,
    cache_dir=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping segments of ``segment_beats`` beats of every piece of a corpus collection.

    Each piece (`corpus.load_collection`) becomes its multi-track roll (`Score.piano_roll`)
    with its tracks merged, cut into segments from its first full bar (a pickup is skipped);
    a last partial segment and empty segments are dropped. Segments are of fixed length in
    beats (a 4/4 bar by default) rather than bars because the collections are written in
    different metres (Palestrina in 4/2, folk songs in 3/4 and 6/8).

    Returns:
        (segments float32 (n, 1, segment_beats · steps_per_beat, 128), piece_index int64 (n,)):
        velocities / 127 and which piece (in load order) each came from, for splitting by piece.
    """
    from harmonycloak.corpus import load_collection

    pieces = load_collection(collection, limit=limit, cache_dir=cache_dir)
    length = segment_beats * steps_per_beat
    segments, owners = [], []
    for index, piece in enumerate(pieces):
        roll = piece.score.piano_roll(steps_per_beat)
        merged = roll.velocities.max(axis=0) if roll.num_tracks else np.zeros((0, NUM_PITCHES), np.float32)
        start = int(roll.bar_lines_step[0]) if len(roll.bar_lines_step) else 0
        if roll.num_bars >= 2 and np.diff(roll.bar_lines_step[:3])[0] < np.diff(roll.bar_lines_step[:3])[1]:
            start = int(roll.bar_lines_step[1])  # skip the pickup
        count = (merged.shape[0] - start) // length
        if count <= 0:
            continue
        cut = merged[start:start + count * length].reshape(count, length, NUM_PITCHES)
        keep = cut.any(axis=(1, 2))
        segments.append(cut[keep][:, None])
        owners.append(np.full(int(keep.sum()), index, dtype=np.int64))
    if not segments:
        return np.zeros((0, 1, length, NUM_PITCHES), np.float32), np.zeros(0, np.int64)
    return np.concatenate(segments).astype(np.float32), np.concatenate(owners)


def split_by_piece(piece_index: np.ndarray, held_out_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (n,) of held-out segments: whole pieces, about ``held_out_fraction`` of them
    (at least one), chosen with ``numpy.random.default_rng(seed)``. Splitting by piece keeps
    bars of one piece from being on both sides, which would inflate held-out accuracy."""
    pieces = np.unique(piece_index)
    rng = np.random.default_rng(seed)
    count = max(1, int(round(held_out_fraction * len(pieces))))
    held = rng.choice(pieces, size=min(count, len(pieces)), replace=False)
    return np.isin(piece_index, held)


def train_corpus_classifier(
    styles: tuple[str, ...] = DEFAULT_STYLES,
    *,
    limit_per_style: dict[str, int] | None = None,
    max_segments_per_style: int | None = 2000,
    held_out_fraction: float = 0.25,
    config: StyleClassifierConfig = StyleClassifierConfig(),
    segment_beats: int = 4,
    cache_dir=None,
) -> tuple[StyleClassifier, dict]:
    """Train a `StyleClassifier` on corpus collections and measure it on held-out pieces.

    Args:
        styles: collection names (the classes, in this order).
        limit_per_style: source files read per collection (None: all; the Essen collection
            has ~200 tunes per file, so 1-2 files are plenty).
        max_segments_per_style: at most this many training segments, and as many held-out
            segments, per class, drawn with the config's seed (keeps it to seconds and keeps a
            big collection from dominating the held-out accuracy).
        held_out_fraction: share of each collection's pieces held out.

    Returns:
        (classifier trained on the training pieces, report) where report holds
        "held_out_accuracy" (plain accuracy over held-out segments), "balanced_accuracy" (mean
        per-class recall), "confusion" (classes × classes counts, held-out), "train_segments"
        and "held_out_segments" (per class).
    """
    limit_per_style = limit_per_style or {}
    rng = np.random.default_rng(config.seed)
    train_features, train_labels, test_features, test_labels = [], [], [], []
    for label, style in enumerate(styles):
        segments, owners = corpus_segments(style, limit=limit_per_style.get(style), steps_per_beat=config.steps_per_beat,
                                           segment_beats=segment_beats, cache_dir=cache_dir)
        if len(np.unique(owners)) < 2:
            raise SettingsError(f"collection {style!r} gave fewer than 2 pieces; read more of it")
        held = split_by_piece(owners, held_out_fraction, config.seed + label)
        train, test = np.flatnonzero(~held), np.flatnonzero(held)
        if max_segments_per_style is not None:
            if len(train) > max_segments_per_style:
                train = np.sort(rng.choice(train, size=max_segments_per_style, replace=False))
            if len(test) > max_segments_per_style:
                test = np.sort(rng.choice(test, size=max_segments_per_style, replace=False))
        train_features.append(style_features(segments[train], config.steps_per_beat))
        test_features.append(style_features(segments[test], config.steps_per_beat))
        train_labels.append(np.full(len(train), label))
        test_labels.append(np.full(len(test), label))
    classifier = StyleClassifier.fit_features(np.concatenate(train_features), np.concatenate(train_labels), tuple(styles), config)
    labels = np.concatenate(test_labels)
    predicted = classifier.predict_proba_features(np.concatenate(test_features)).argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, len(styles))
    recall = np.diag(confusion) / confusion.sum(axis=1).clip(min=1)
    report = {
        "held_out_accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": float(recall.mean()),
        "confusion": confusion,
        "train_segments": {s: len(f) for s, f in zip(styles, train_features)},
        "held_out_segments": {s: len(f) for s, f in zip(styles, test_features)},
    }
    return classifier, report


def label_shares(classifier: StyleClassifier, segments: np.ndarray) -> dict[str, float]:
    """Share of the sounding segments (examples, tracks, steps, 128) the classifier labels as each
    class; silent segments are not classified, and every share is NaN when none sounds."""
    segments = np.asarray(segments)
    sounding = segments[(segments > 0).reshape(segments.shape[0], -1).any(axis=1)] if segments.shape[0] else segments
    if sounding.shape[0] == 0:
        return {name: math.nan for name in classifier.classes}
    predicted = classifier.predict(sounding)
    return {name: float(np.mean(predicted == index)) for index, name in enumerate(classifier.classes)}
