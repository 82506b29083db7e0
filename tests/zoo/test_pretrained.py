"""Each committed zoo model has learned: on a handful of held-out examples its loss is below
that of the same architecture at the same seed before training (recomputed here, not read
from the cards)."""

import pytest
import torch

from harmonycloak.zoo import load_zoo_model
from harmonycloak.zoo.registry import zoo_entry
from harmonycloak.zoo.store import read_manifest, weights_dir
from harmonycloak.zoo.train import build_entry_model, gan_discriminator_loss

COMMITTED = sorted(name[:-3] for name in read_manifest(weights_dir()))
AUDIO_SOURCES = ("drascula", "monteverdi")  # one held-out file of each: a recording and a rendered score
MIDI_SOURCES = ("ryans-mammoth", "haydn")


@pytest.fixture(scope="module")
def heldout_audio():
    from harmonycloak.zoo.audio_corpus import load_clip_set
    from harmonycloak.zoo.sources import ZooDataError

    try:
        clips = load_clip_set("heldout", sources=AUDIO_SOURCES, max_files_per_source=1)
    except ZooDataError as error:
        pytest.skip(f"zoo audio not installed: {error}")
    crops = [clips.waveforms(range(len(clips)), start, 40_960) for start in (0, 81_920)]
    return torch.cat(crops)[:6]  # (6, 2.56 s)


@pytest.fixture(scope="module")
def heldout_phrases():
    from harmonycloak.zoo.symbolic_corpus import load_phrases

    phrases, _ = load_phrases("heldout", 48, 4, max_files_per_source=1, sources=MIDI_SOURCES)
    return torch.from_numpy(phrases[:6].astype("float32") / 127)


def _loss(model, name, batch):
    model.eval()
    if name == "musegan":
        return gan_discriminator_loss(model, batch).mean().item()
    if name == "contrastive":  # fixed negatives: each model's own embeddings of the other examples
        model.set_negatives(batch)
    return model.generative_loss(batch).mean().item()


@pytest.mark.parametrize("name", COMMITTED)
def test_trained_model_beats_its_untrained_self_on_heldout_music(name, request):
    batch = request.getfixturevalue("heldout_phrases" if name in ("musegan", "symphonynet") else "heldout_audio")
    with torch.no_grad():
        trained = _loss(load_zoo_model(name), name, batch)
        untrained = _loss(build_entry_model(zoo_entry(name)), name, batch)
    assert trained < untrained
