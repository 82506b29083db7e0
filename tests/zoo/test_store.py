"""The committed zoo weights: checksums, loading, cards; damaged files refused."""

import json
import shutil

import pytest
import torch

from harmonycloak.errors import ModelError
from harmonycloak.models.registry import family_spec
from harmonycloak.zoo import load_weights_file, load_zoo_model
from harmonycloak.zoo.registry import zoo_entries
from harmonycloak.zoo.store import file_sha256, read_manifest, weights_dir

MANIFEST = read_manifest(weights_dir())
COMMITTED = sorted(name[:-3] for name in MANIFEST)


def test_every_non_test_zoo_entry_is_committed():
    expected = sorted(name for name in zoo_entries() if not name.startswith("tiny-"))
    assert COMMITTED == expected


def test_weights_are_at_most_40_megabytes_in_all():
    assert sum((weights_dir() / name).stat().st_size for name in MANIFEST) <= 40e6


@pytest.mark.parametrize("name", COMMITTED)
def test_checksum_matches_and_weights_load_into_their_architecture(name):
    path = weights_dir() / f"{name}.pt"
    assert file_sha256(path) == MANIFEST[path.name]
    model = load_zoo_model(name)
    card = json.loads((weights_dir() / f"{name}.json").read_text())
    assert isinstance(model, family_spec(card["family"]).builder)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad or True) >= card["parameters"]
    assert not model.training
    assert card["weights_sha256"] == MANIFEST[path.name]
    assert card["heldout_loss"] < card["untrained_heldout_loss"]
    for key in ("command", "data", "steps", "batch", "learning_rate", "wall_time_s", "train_loss", "seed"):
        assert key in card


def test_a_changed_weight_file_is_refused(tmp_path):
    name = COMMITTED[0]
    folder = tmp_path / "weights"
    shutil.copytree(weights_dir(), folder)
    path = folder / f"{name}.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_zoo_model(name, folder)


def test_unknown_names_and_foreign_files_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="no zoo weights"):
        load_zoo_model("no-such-model")
    foreign = tmp_path / "foreign.pt"
    torch.save({"something": 1}, foreign)
    with pytest.raises(ModelError, match="not a harmonycloak zoo"):
        load_weights_file(foreign)
    with pytest.raises(ModelError, match="does not exist"):
        load_weights_file(tmp_path / "missing.pt")


def test_user_checkpoints_of_the_new_families_round_trip(tmp_path):
    from harmonycloak.models.checkpoint import load_checkpoint, save_checkpoint
    from harmonycloak.models.registry import build_model

    for family in ("codec", "codec-lm", "contrastive", "mel-diffusion"):
        model = build_model(family, "tiny", seed=3)
        path = save_checkpoint(model, family, tmp_path / f"{family}.pt")
        loaded, loaded_family = load_checkpoint(path)
        assert loaded_family == family and loaded.config == model.config
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value)
