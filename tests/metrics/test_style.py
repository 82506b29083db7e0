"""Style classifier: trivially separable synthetic styles, determinism, malformed input, and
held-out accuracy on the music21 corpus (printed)."""

from __future__ import annotations

import numpy as np
import pytest

from harmonycloak.errors import SettingsError
from harmonycloak.metrics.style import (
    StyleClassifier,
    StyleClassifierConfig,
    confusion_matrix,
    label_shares,
    split_by_piece,
    style_features,
    train_corpus_classifier,
)

C_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def synthetic_style(kind: str, count: int, seed: int) -> np.ndarray:
    """(count, 2, 16, 128) rolls. "hymn": quarter notes of the C major scale in two voices
    around C5 and C3. "chromatic": random sixteenth-note pitches of all 12 classes, one voice
    in the middle register, the other track empty."""
    rng = np.random.default_rng(seed)
    rolls = np.zeros((count, 2, 16, 128), dtype=np.float32)
    for example in range(count):
        if kind == "hymn":
            for beat in range(4):
                for track, octave in ((0, 72), (1, 48)):
                    pitch = octave + rng.choice(C_MAJOR)
                    rolls[example, track, 4 * beat:4 * beat + 4, pitch] = 0.7
        else:
            for step in range(16):
                rolls[example, 0, step, 54 + rng.integers(0, 12)] = 0.7
    return rolls


def synthetic_data(count: int, seed: int):
    rolls = np.concatenate([synthetic_style("hymn", count, seed), synthetic_style("chromatic", count, seed + 1)])
    labels = np.repeat([0, 1], count)
    return rolls, labels


def test_features_mean_what_they_say():
    features = style_features(synthetic_style("hymn", 1, 0), steps_per_beat=4)[0]
    assert features.shape == (160,)
    chroma, pitches, polyphony = features[:12], features[12:140], features[140:147]
    lengths, phase, density = features[147:153], features[153:157], features[157:]
    assert chroma[[1, 3, 6, 8, 10]].sum() == 0 and chroma.sum() == pytest.approx(1.0)
    assert pitches[:48].sum() == 0 and pitches.sum() == pytest.approx(1.0)
    assert polyphony[2] == pytest.approx(1.0)  # two voices at every step
    assert lengths[2] > 0 and lengths[:2].sum() == 0  # quarter notes (repeated pitches may merge)
    assert phase[0] == pytest.approx(1.0)  # every onset on a beat
    assert 0 < density[0] <= 2 / 4  # at most 2 onsets per beat, over 4
    assert 48 / 127 < density[1] < 84 / 127  # mean pitch between the two voices' octaves
    assert np.all(style_features(np.zeros((1, 3, 16, 128)))[0, :12] == 0)  # empty: zero distributions


def test_classifier_separates_two_synthetic_styles_and_is_deterministic():
    rolls, labels = synthetic_data(60, seed=0)
    config = StyleClassifierConfig(epochs=100)
    classifier = StyleClassifier.fit(rolls, labels, ("hymn", "chromatic"), config)
    test_rolls, test_labels = synthetic_data(40, seed=10)
    probabilities = classifier.predict_proba(test_rolls)
    assert probabilities.shape == (80, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities.argmax(axis=1) == test_labels).mean() == 1.0
    again = StyleClassifier.fit(rolls, labels, ("hymn", "chromatic"), config).predict_proba(test_rolls)
    np.testing.assert_array_equal(again, probabilities)
    other = StyleClassifier.fit(rolls, labels, ("hymn", "chromatic"), StyleClassifierConfig(epochs=100, seed=1))
    assert not np.array_equal(other.predict_proba(test_rolls), probabilities)
    # Control: with labels shuffled the classifier cannot beat chance on fresh data.
    shuffled = np.random.default_rng(0).permutation(labels)
    chance = StyleClassifier.fit(rolls, shuffled, ("hymn", "chromatic"), config).predict(test_rolls)
    assert (chance == test_labels).mean() < 0.8


def test_malformed_input_raises_settings_error():
    rolls, labels = synthetic_data(4, seed=0)
    with pytest.raises(SettingsError):
        style_features(rolls[:, 0])  # 3-D
    with pytest.raises(SettingsError):
        StyleClassifier.fit(rolls, np.zeros(len(rolls), int), ("a", "b"))  # class b has no example
    with pytest.raises(SettingsError):
        StyleClassifier.fit(rolls, labels[:3], ("a", "b"))


def test_split_by_piece_and_confusion_matrix():
    pieces = np.repeat(np.arange(8), 5)
    held = split_by_piece(pieces, 0.25, seed=0)
    assert len(np.unique(pieces[held])) == 2
    assert not set(pieces[held]) & set(pieces[~held])
    np.testing.assert_array_equal(confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 2), [[1, 1], [0, 2]])


@pytest.mark.slow
def test_corpus_classifier_held_out_accuracy():
    """Bach vs Palestrina vs Monteverdi vs Essen folk songs, split by piece. Loads the corpus
    through its cache (the first run on a machine parses the files: about a minute)."""
    limits = {"bach": 12, "palestrina": 12, "monteverdi": 12, "essen": 1}
    classifier, report = train_corpus_classifier(limit_per_style=limits, max_segments_per_style=400)
    print(
        f"style classifier held-out accuracy {report['held_out_accuracy']:.3f}, balanced {report['balanced_accuracy']:.3f}; "
        f"train {report['train_segments']}, held out {report['held_out_segments']}; confusion (rows true "
        f"{list(classifier.classes)}) {report['confusion'].tolist()}"
    )
    assert report["balanced_accuracy"] > 0.6  # chance is 0.25


def test_label_shares_count_sounding_segments_only():
    rolls, labels = synthetic_data(60, seed=0)
    classifier = StyleClassifier.fit(rolls, labels, ("hymn", "chromatic"), StyleClassifierConfig(epochs=100))
    silent = np.zeros((2, 2, 16, 128), np.float32)
    mixed = np.concatenate([synthetic_style("hymn", 3, 20), silent, synthetic_style("chromatic", 1, 21)])
    assert label_shares(classifier, mixed) == pytest.approx({"hymn": 0.75, "chromatic": 0.25})  # 3 and 1 of 4
    assert all(np.isnan(share) for share in label_shares(classifier, silent).values())

