"""The ``harmonycloak zoo`` commands: train one zoo model, list the zoo.

    harmonycloak zoo train NAME [--out DIR]
    harmonycloak zoo list [--dir DIR]

`add_zoo_commands` adds them to the main parser; nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def add_zoo_commands(commands: argparse._SubParsersAction, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``zoo train`` and ``zoo list`` to the main command's subparsers, each made by
    ``command(subparsers, name, help, *examples)`` (the main parser's shared options and epilog)."""
    zoo = command(commands, "zoo", "pretrained attacker models: train one, list them",
                  "harmonycloak zoo list", "harmonycloak zoo train ar-gru --out my-zoo/")
    verbs = zoo.add_subparsers(required=True, metavar="VERB")
    train = command(verbs, "train", "train one zoo model exactly as its registry entry says",
                    "harmonycloak zoo train ar-transformer --out my-zoo/")
    train.add_argument("name", help="zoo entry (see `harmonycloak zoo list`)")
    train.add_argument("--out", type=Path, help="folder for NAME.pt, NAME.json and the manifest "
                                                "(default: the package's committed weights)")
    train.set_defaults(run=run_zoo_train)
    listing = command(verbs, "list", "the zoo's models with their size and held-out loss",
                      "harmonycloak zoo list", "harmonycloak zoo list --dir my-zoo/")
    listing.add_argument("--dir", type=Path, help="folder of weights and cards (default: the committed ones)")
    listing.set_defaults(run=run_zoo_list)


def run_zoo_train(arguments: argparse.Namespace) -> int:
    from harmonycloak.zoo.train import train_entry

    train_entry(arguments.name, arguments.out, log=lambda line: print(line, flush=True))
    return 0


def zoo_table(folder: Path | None = None) -> list[dict]:
    """One row per card in the folder: name, family, parameters, MB, steps (with the step whose weights
    were kept, where a checkpoint was chosen), minutes and losses."""
    from harmonycloak.zoo.registry import zoo_entries
    from harmonycloak.zoo.store import weights_dir

    folder = Path(folder) if folder is not None else weights_dir()
    order = list(zoo_entries())
    cards = [json.loads(path.read_text()) for path in folder.glob("*.json") if path.name != "MANIFEST.json"]
    cards.sort(key=lambda card: order.index(card["name"]) if card["name"] in order else len(order))
    return [{
        "name": card["name"], "family": card["family"], "parameters": card["parameters"],
        "mb": round((folder / card["weights_file"]).stat().st_size / 1e6, 2) if (folder / card["weights_file"]).is_file()
        else None,
        "steps": card["steps"], "kept_step": card.get("selected_step"), "minutes": round(card["wall_time_s"] / 60, 1),
        "train_loss": card["train_loss"], "heldout_loss": card["heldout_loss"],
        "untrained_heldout_loss": card["untrained_heldout_loss"],
    } for card in cards]


def run_zoo_list(arguments: argparse.Namespace) -> int:
    rows = zoo_table(arguments.dir)
    header = f"{'name':<22}{'family':<16}{'params':>11}{'MB':>7}{'steps':>10}{'min':>6}{'train':>9}{'held-out':>10}" \
             f"{'untrained':>11}"
    print(header)
    for row in rows:
        mb = "-" if row["mb"] is None else f"{row['mb']:.2f}"
        steps = f"{row['kept_step']}/{row['steps']}" if row["kept_step"] else str(row["steps"])  # kept / trained
        print(f"{row['name']:<22}{row['family']:<16}{row['parameters']:>11,}{mb:>7}{steps:>10}"
              f"{row['minutes']:>6.1f}{row['train_loss']:>9.4f}{row['heldout_loss']:>10.4f}"
              f"{row['untrained_heldout_loss']:>11.4f}")
    if not rows:
        print("(no trained zoo models here)")
    return 0
