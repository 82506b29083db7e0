"""What a model generates, judged: the Fréchet distance between its music and reference music
(held-out songs after unlearning; the artist's unreleased songs after a style-mimicry fine-tune)
in the zoo contrastive encoder's embedding (`metrics.audio.frechet_distance`).

The families with a sampler generate log-mel frames of the zoo's shared front end, which the
zoo encoder reads directly (no waveform inversion):

  next-frame (ar-*)  continue the opening `prompt_s` of each held-out song for `generated_s`
                     (`models.audio_generation.generate`, Gaussian sampling at `temperature`)
  mel-diffusion      DDIM sampling (`MelDiffusionModel.sample`) conditioned on the encoder's
                     embedding of each held-out song's first segment

The codec LM's sampler produces codec tokens that would need the codec's decoder and the
encoder's front end: not measured here (None); nor are models with another front end than the
encoder's (the tiny presets of the smoke suite's T1).

Every generated clip and every held-out song is cut into windows of `window_s`; each window is
one embedding, pooled per set into a Gaussian; FD = ‖μ_g − μ_r‖² + Tr(Σ_g + Σ_r − 2(Σ_g Σ_r)^½).
With a few dozen windows in 128 dimensions the FD is biased upwards; compare only FDs of one
run's settings (the same clips, windows and seeds), as the report does against the original.

The same windows are also judged one by one by an artist classifier (`ArtistClassifier`, a
logistic regression on the embedding trained on clean music of the artist and of others): the
share of them it gives the artist.

Shapes: songs (N,) at the working rate; frames (B, T, F); embeddings (W, E).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harmonycloak.bench.unlearnability.threats import FAMILY_GROUP
from harmonycloak.metrics.style import StyleClassifier
from harmonycloak.models.interface import GenerativeModel
from harmonycloak.settings import SEGMENT_S, WORKING_RATE_HZ


@dataclass(frozen=True)
class GeneratedSpec:
    """How much music each measured model generates."""

    clips: int = 8  # generated clips per model (one per held-out song, cycling)
    prompt_s: float = 0.5  # next-frame models: the opening given as the prompt
    generated_s: float = SEGMENT_S  # length of each generated clip
    temperature: float = 0.1  # next-frame sampling noise (front-end units); 0 = greedy
    diffusion_steps: int = 20  # DDIM steps
    window_s: float = 0.64  # one embedding per window of this length


def lazy_zoo_encoder() -> Callable[[], GenerativeModel]:
    """A function that loads the zoo's contrastive encoder (the judge of `generated_fd`) on its
    first call and returns that one model on every later call."""
    from harmonycloak.zoo import load_zoo_model

    return functools.cache(lambda: load_zoo_model("contrastive").eval())


def has_sampler(family: str) -> bool:
    return FAMILY_GROUP.get(family) == "next-frame" or family == "mel-diffusion"


def frontend(model: GenerativeModel):
    """The front end whose frames the model generates."""
    return model.frames_config if model.family == "mel-diffusion" else model.config.frontend


def generated_frames(model: GenerativeModel, songs: list[np.ndarray], spec: GeneratedSpec,
                     generator: torch.Generator) -> torch.Tensor:
    """(clips, T, F) log-mel frames the model generates from (or conditioned on) `songs`."""
    from harmonycloak.models.audio_generation import generate

    count = round(spec.generated_s * WORKING_RATE_HZ / frontend(model).hop_length)
    device = next(model.parameters()).device
    picked = [songs[i % len(songs)] for i in range(spec.clips)]
    with torch.no_grad():
        if model.family == "mel-diffusion":
            first = round(spec.window_s * WORKING_RATE_HZ)
            condition = model.conditioner.embed(torch.from_numpy(np.stack([s[:first] for s in picked])).to(device))
            return model.sample(condition, count, generator, steps=spec.diffusion_steps)
        prompts = torch.from_numpy(np.stack([s[: round(spec.prompt_s * WORKING_RATE_HZ)] for s in picked])).to(device)
        prompt_frames = model.features(prompts)
        return generate(model, prompt_frames, count, generator, spec.temperature)[:, prompt_frames.shape[1]:]


def window_embeddings(encoder: GenerativeModel, frames: torch.Tensor, window_frames: int) -> np.ndarray:
    """(W, E): the encoder's embedding of every whole window of `window_frames` of frames (B, T, F)."""
    windows = frames[:, : frames.shape[1] - frames.shape[1] % window_frames].unflatten(1, (-1, window_frames))
    with torch.no_grad():
        return encoder.embed_frames(windows.flatten(0, 1)).double().cpu().numpy()


def song_embeddings(encoder: GenerativeModel, songs: list[np.ndarray], window_s: float) -> np.ndarray:
    """(W, E): the encoder's embedding of every whole window of `window_s` of every song (songs of
    any lengths)."""
    window_frames = round(window_s * WORKING_RATE_HZ / encoder.config.frontend.hop_length)
    device = next(encoder.parameters()).device
    rows = []
    with torch.no_grad():
        for song in songs:
            frames = encoder.features(torch.from_numpy(np.ascontiguousarray(song, dtype=np.float32))[None].to(device))
            rows.append(window_embeddings(encoder, frames, window_frames))
    return np.concatenate(rows)


def generated_embeddings(model: GenerativeModel, encoder: GenerativeModel, songs: list[np.ndarray],
                         spec: GeneratedSpec, seed: int) -> np.ndarray | None:
    """(W, E): the encoder's window embeddings of what `model` generates (seeded) from `songs`;
    None for a family without a sampler here, or a model whose frames the encoder does not read
    (the tiny presets' front ends)."""
    if not has_sampler(model.family) or frontend(model) != encoder.config.frontend:
        return None
    window_frames = round(spec.window_s * WORKING_RATE_HZ / encoder.config.frontend.hop_length)
    was_training = model.training
    try:
        frames = generated_frames(model.eval(), songs, spec, torch.Generator().manual_seed(seed))
    finally:
        model.train(was_training)
    return window_embeddings(encoder, frames.to(next(encoder.parameters()).device), window_frames)


def generated_fd(model: GenerativeModel, encoder: GenerativeModel, songs: list[np.ndarray], spec: GeneratedSpec,
                 seed: int) -> float | None:
    """FD between what `model` generates (seeded) and `songs`, in the encoder's embedding; None
    where `generated_embeddings` is None."""
    generated = generated_embeddings(model, encoder, songs, spec, seed)
    return None if generated is None else embedding_fd(generated, song_embeddings(encoder, songs, spec.window_s))


def embedding_fd(embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> float:
    """FD between two sets of embeddings (W, E), each pooled into a Gaussian."""
    from harmonycloak.metrics.audio import frechet_distance, gaussian_statistics

    return frechet_distance(*gaussian_statistics(embeddings_a), *gaussian_statistics(embeddings_b))


@dataclass
class ArtistClassifier:
    """Who made a window of music, read from the zoo encoder's embedding: a multinomial logistic
    regression (`metrics.style.StyleClassifier` on embeddings, classes balanced) trained on clean
    windows of the artist and of the other artists at hand.

    `share` is the fraction of windows it gives the artist: of what a model generates, how much
    sounds like the artist to a judge that knows the artist and the others.
    """

    classifier: StyleClassifier  # over (W, E) embeddings
    artist: str
    report: dict  # "classes", training "windows" per class; on held-out windows: "accuracy",
    # "balanced_accuracy", "artist_recall" (the artist's windows labelled the artist), "others_as_artist"
    # (other artists' windows labelled the artist), "held_out_windows"

    def share(self, embeddings: np.ndarray) -> float:
        """Fraction of the windows (W, E) labelled the artist."""
        predicted = self.classifier.predict_proba_features(embeddings.astype(np.float32)).argmax(axis=1)
        return float(np.mean(predicted == self.classifier.classes.index(self.artist)))


def train_artist_classifier(encoder: GenerativeModel, artist: str, training: dict[str, list[np.ndarray]],
                            held_out: dict[str, list[np.ndarray]], window_s: float, seed: int) -> ArtistClassifier:
    """An `ArtistClassifier` trained on the windows of `training` (artist name → songs; must hold
    `artist` and at least one other) and measured on the windows of `held_out` (songs of artists
    it knows; others are ignored).

    Raises:
        SettingsError: `artist` missing from `training`, or no other artist beside it.
    """
    from harmonycloak.errors import SettingsError
    from harmonycloak.metrics.style import StyleClassifierConfig, confusion_matrix

    if artist not in training or len([name for name, songs in training.items() if songs]) < 2:
        raise SettingsError(f"the artist classifier needs songs of '{artist}' and of at least one other artist")
    classes = tuple(name for name, songs in training.items() if songs)

    def windows(by_artist: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        rows = [(song_embeddings(encoder, songs, window_s), classes.index(name))
                for name, songs in by_artist.items() if songs and name in classes]
        if not rows:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        return (np.concatenate([r[0] for r in rows]).astype(np.float32),
                np.concatenate([np.full(len(r[0]), r[1]) for r in rows]))

    features, labels = windows(training)
    classifier = StyleClassifier.fit_features(features, labels, classes, StyleClassifierConfig(hidden=0, seed=seed))
    test_features, test_labels = windows(held_out)
    report: dict = {"classes": list(classes), "windows": {name: int(np.sum(labels == i)) for i, name in enumerate(classes)}}
    if len(test_labels):
        predicted = classifier.predict_proba_features(test_features).argmax(axis=1)
        confusion = confusion_matrix(test_labels, predicted, len(classes))
        present = confusion.sum(axis=1) > 0
        recall = np.diag(confusion)[present] / confusion.sum(axis=1)[present]
        mine = classes.index(artist)
        others = np.arange(len(classes)) != mine
        mine_total, others_total = confusion[mine].sum(), confusion[others].sum()
        report |= {"accuracy": float(np.mean(predicted == test_labels)), "balanced_accuracy": float(recall.mean()),
                   "artist_recall": float(confusion[mine, mine] / mine_total) if mine_total else None,
                   "others_as_artist": float(confusion[others, mine].sum() / others_total) if others_total else None,
                   "held_out_windows": int(len(test_labels))}
    return ArtistClassifier(classifier, artist, report)
