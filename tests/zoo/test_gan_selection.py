"""A zoo GAN keeps the checkpoint whose written bars are closest to its corpus's, not its last."""

from __future__ import annotations

import pytest
import torch

from harmonycloak.bench.unlearnability.midi_measures import style_distance
from harmonycloak.models.musegan import TINY_PHRASE
from harmonycloak.models.registry import build_model, family_spec
from harmonycloak.zoo.entry_data import EntryData
from harmonycloak.zoo.registry import ZooEntry
from harmonycloak.zoo.train import SELECTION_WRITTEN_PHRASES, GanSelection, _train_gan


def chord_phrases(count: int) -> torch.Tensor:
    """(count, 2, 16, 128) at velocity 0.8: track 0 holds a C major triad, track 1 a bass note an
    octave under its root; phrase i is transposed up by i mod 3 semitones (all inside 48–71)."""
    rolls = torch.zeros(count, TINY_PHRASE.tracks, TINY_PHRASE.steps, 128)
    for index in range(count):
        root = 60 + index % 3
        rolls[index, 0, :, [root, root + 4, root + 7]] = 0.8
        rolls[index, 1, :, root - 12] = 0.8
    return rolls


def tiny_gan_entry(steps: int, select_every_steps: int) -> ZooEntry:
    return ZooEntry("tiny-gan", "musegan", family_spec("musegan").presets["tiny"], "midi", steps=steps, batch=4,
                    learning_rate=1e-2, segment_s=0.0, select_every_steps=select_every_steps)


def written_distance(model, references: torch.Tensor) -> float:
    return style_distance(model, "musegan", references, SELECTION_WRITTEN_PHRASES, TINY_PHRASE.steps_per_bar, seed=0)


def silence_the_generator(model) -> None:
    """Every cell's logit far under 0: the generator writes nothing."""
    with torch.no_grad():
        for parameter in model.generator_network.parameters():
            parameter.fill_(0.0)
        list(model.generator_network.parameters())[-1].fill_(-20.0)


def test_the_closer_checkpoint_is_kept_whether_it_comes_first_or_last():
    references = chord_phrases(12)
    noisy = build_model("musegan", "tiny", seed=0, initial_note_density=0.4)  # untrained: any pitch, any time
    silent = build_model("musegan", "tiny", seed=0, initial_note_density=0.4)
    silence_the_generator(silent)
    distances = {"noisy": written_distance(noisy, references), "silent": written_distance(silent, references)}
    assert distances["noisy"] != pytest.approx(distances["silent"], abs=0.1)
    closer = min(distances, key=distances.get)
    for order in (("noisy", "silent"), ("silent", "noisy")):
        selection = GanSelection(references)
        model = build_model("musegan", "tiny", seed=0, initial_note_density=0.4)
        for step, name in enumerate(order, start=1):
            model.load_state_dict((noisy if name == "noisy" else silent).state_dict())
            assert selection.consider(model, step) == pytest.approx(distances[name])
        assert selection.best_step == order.index(closer) + 1
        kept = (noisy if closer == "noisy" else silent).state_dict()
        assert all(torch.equal(selection.best_state[name], kept[name]) for name in kept)


def trained_tiny_gan(steps: int, select_every_steps: int):
    """(model, data, curve, card notes) of a tiny GAN trained on `chord_phrases` by the zoo's GAN trainer."""
    references = chord_phrases(12)
    data = EntryData(lambda batch, generator: references[torch.randint(12, (batch,), generator=generator)],
                     references[:4])
    model = build_model("musegan", "tiny", seed=0, initial_note_density=0.45)
    curve, notes = _train_gan(model, tiny_gan_entry(steps, select_every_steps), data,
                              torch.Generator().manual_seed(0), log=lambda line: None)
    return model, data, curve, notes


def test_gan_training_ends_on_the_closest_checkpoint_and_says_which():
    model, data, curve, notes = trained_tiny_gan(steps=24, select_every_steps=4)
    by_step = {int(step): fd for step, fd in notes["selection_fd_by_step"].items()}
    assert sorted(by_step) == [4, 8, 12, 16, 20, 24]
    assert notes["selected_step"] == min(by_step, key=by_step.get)
    assert notes["selected_step"] < 24, "this seed's GAN must drift away again, or the last weights would pass"
    assert len(curve) == notes["selected_step"]
    # The weights loaded are the selected checkpoint's: its written bars measure the same again.
    # (The reference phrases are the selection's own draw from the sampler, seeded apart.)
    selection_references = data.sample(256, torch.Generator().manual_seed(2))
    assert written_distance(model, selection_references) == pytest.approx(by_step[notes["selected_step"]], abs=1e-4)


def test_without_selection_the_last_weights_stay_and_the_card_gains_nothing():
    _, _, curve, notes = trained_tiny_gan(steps=4, select_every_steps=0)
    assert notes == {} and len(curve) == 4
