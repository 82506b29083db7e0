"""`harmonycloak zoo train` of the tiny entry runs end to end and writes a card; `zoo list` reads it."""

import json

from harmonycloak.cli import main
from harmonycloak.zoo import load_weights_file
from harmonycloak.zoo.store import file_sha256, read_manifest, weights_dir


def test_zoo_train_writes_weights_manifest_and_card_and_is_reproducible(tmp_path, capsys):
    assert main(["zoo", "train", "tiny-ar-gru", "--out", str(tmp_path / "a")]) == 0
    assert main(["zoo", "train", "tiny-ar-gru", "--out", str(tmp_path / "b")]) == 0
    card = json.loads((tmp_path / "a" / "tiny-ar-gru.json").read_text())
    assert card["command"].startswith("harmonycloak zoo train tiny-ar-gru")
    assert card["steps"] == 4 and card["family"] == "ar-gru"
    assert card["weights_sha256"] == read_manifest(tmp_path / "a")["tiny-ar-gru.pt"]
    assert card["heldout_loss"] < card["untrained_heldout_loss"]
    # same entry, same seed, one thread: the same weights
    assert file_sha256(tmp_path / "a" / "tiny-ar-gru.pt") == file_sha256(tmp_path / "b" / "tiny-ar-gru.pt")
    model, family = load_weights_file(tmp_path / "a" / "tiny-ar-gru.pt")
    assert family == "ar-gru"
    capsys.readouterr()
    assert main(["zoo", "list", "--dir", str(tmp_path / "a")]) == 0
    listing = capsys.readouterr().out
    assert "tiny-ar-gru" in listing and "ar-gru" in listing


def test_unknown_zoo_entry_is_a_one_line_error(tmp_path, capsys):
    assert main(["zoo", "train", "no-such-model", "--out", str(tmp_path)]) == 2  # a settings error
    assert "unknown zoo model" in capsys.readouterr().err


def test_zoo_list_shows_the_step_a_gan_was_kept_at(capsys):
    assert main(["zoo", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    card = json.loads((weights_dir() / "musegan.json").read_text())
    assert rows["musegan"][4] == f"{card['selected_step']}/{card['steps']}" == "900/3000"
    assert rows["ar-gru"][4] == "1000"  # trained to its end: its steps alone

