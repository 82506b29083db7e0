"""Save and load model checkpoints: the family name, its config and the weights in one file.

A white-box user names a checkpoint; this is the one place that reads it. Files are read with
``torch.load(weights_only=True)``, so a checkpoint cannot run code when it is opened.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.models.registry import build_from_config, config_from_dict, config_to_dict, family_spec

CHECKPOINT_FORMAT_VERSION = 1


def save_checkpoint(model: nn.Module, family: str, path: str | Path) -> Path:
    """Write `model` (of registry family `family`) to `path`, atomically."""
    path = Path(path)
    payload = {
        "harmonycloak_checkpoint": CHECKPOINT_FORMAT_VERSION,
        "family": family,
        "config": config_to_dict(model.config),
        "state_dict": model.state_dict(),
    }
    with atomic_output(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_checkpoint(path: str | Path) -> tuple[nn.Module, str]:
    """Read a checkpoint written by `save_checkpoint`; returns (model, family)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("the model checkpoint does not exist", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a corrupt or foreign file
        raise ModelError(f"not a readable model checkpoint ({type(error).__name__})", path) from error
    if not isinstance(payload, dict) or payload.get("harmonycloak_checkpoint") != CHECKPOINT_FORMAT_VERSION:
        raise ModelError("not a harmonycloak model checkpoint (save one with `harmonycloak train`)", path)
    try:
        spec = family_spec(payload["family"])
        config = config_from_dict(spec.config_class, payload["config"])
        model = build_from_config(payload["family"], config)
        model.load_state_dict(payload["state_dict"])
    except (SettingsError, KeyError, TypeError, RuntimeError) as error:
        raise ModelError(f"the checkpoint does not match its architecture: {error}", path) from error
    return model, payload["family"]
