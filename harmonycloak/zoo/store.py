"""The zoo's weight files: fp16 tensors with their config, a manifest of sha256 checksums, a loader.

A weight file ``NAME.pt`` (``torch.save``, read with ``weights_only=True``) holds

    {"harmonycloak_zoo": 1, "name": NAME, "family": FAMILY, "config": {...},
     "state_dict": {parameter or buffer: tensor}}

with floating-point tensors stored as float16 (half the size) and loaded into a float32
model. ``MANIFEST.json`` beside the files maps each file name to the sha256 of its bytes;
`load_zoo_model` refuses a file whose checksum differs. ``NAME.json`` beside it is its card
(`harmonycloak.zoo.train`).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
from pathlib import Path

import torch
from torch import nn

from harmonycloak.errors import ModelError, SettingsError
from harmonycloak.io.atomic import atomic_output
from harmonycloak.models.registry import build_from_config, config_from_dict, config_to_dict, family_spec

ZOO_FORMAT_VERSION = 1
MANIFEST_NAME = "MANIFEST.json"


def weights_dir() -> Path:
    """The folder of the committed zoo weights, inside the package."""
    return Path(__file__).resolve().parent / "weights"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state with floating-point tensors as float16 (others unchanged), on the CPU."""
    return {key: (value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu()).clone()
            for key, value in model.state_dict().items()}


def round_to_stored_precision(model: nn.Module) -> nn.Module:
    """Round the model's floating-point state to float16 and back, in place: what loading gives."""
    state = {key: value.float() if value.is_floating_point() else value for key, value in half_state_dict(model).items()}
    model.load_state_dict(state)
    return model


def save_zoo_weights(model: nn.Module, name: str, family: str, folder: Path) -> Path:
    """Write ``folder/NAME.pt`` atomically and record its checksum in the folder's manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    payload = {"harmonycloak_zoo": ZOO_FORMAT_VERSION, "name": name, "family": family,
               "config": config_to_dict(model.config), "state_dict": half_state_dict(model)}
    buffer = io.BytesIO()  # saved through a buffer: torch names the archive after a file, and the temporary name varies
    torch.save(payload, buffer)
    with atomic_output(path, ModelError) as temporary:
        temporary.write_bytes(buffer.getvalue())
    # Two trainings may finish at once: the manifest's read-modify-write holds a lock.
    with open(folder / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(folder)
        manifest[path.name] = file_sha256(path)
        with atomic_output(folder / MANIFEST_NAME, ModelError) as temporary:
            temporary.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    return path


def read_manifest(folder: Path) -> dict[str, str]:
    """File name → sha256 of the folder's manifest ({} when there is none)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ModelError(f"the zoo manifest is not valid JSON ({error})", path) from error


def load_weights_file(path: str | Path, expected_sha256: str | None = None) -> tuple[nn.Module, str]:
    """Build the model a zoo weight file describes and load its weights as float32: (model, family).

    Also the loader of weight files a user trained (``harmonycloak zoo train NAME --out DIR``).

    Raises:
        ModelError: the file is missing, its sha256 differs from ``expected_sha256``, it is not a
            zoo weight file, or its weights do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError("the zoo weight file does not exist", path)
    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise ModelError("the weight file's sha256 differs from the manifest's: it is damaged or was changed", path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a corrupt or foreign file
        raise ModelError(f"not a readable zoo weight file ({type(error).__name__})", path) from error
    if not isinstance(payload, dict) or payload.get("harmonycloak_zoo") != ZOO_FORMAT_VERSION:
        raise ModelError("not a harmonycloak zoo weight file", path)
    try:
        spec = family_spec(payload["family"])
        model = build_from_config(payload["family"], config_from_dict(spec.config_class, payload["config"]))
        state = {key: value.float() if value.is_floating_point() else value
                 for key, value in payload["state_dict"].items()}
        model.load_state_dict(state)
    except (SettingsError, KeyError, TypeError, RuntimeError) as error:
        raise ModelError(f"the weights do not match their architecture: {error}", path) from error
    return model.eval(), payload["family"]


def load_zoo_model(name: str, folder: str | Path | None = None) -> nn.Module:
    """The pretrained zoo model `name`, float32, in eval mode, its checksum checked.

    Args:
        name: a zoo entry (`harmonycloak.zoo.registry.ZOO`), e.g. "ar-gru", "codec-lm".
        folder: where the weights and manifest are (default: the committed ones, `weights_dir`).

    Raises:
        ModelError: no weights of that name, or the checksum or architecture does not match.
    """
    folder = Path(folder) if folder is not None else weights_dir()
    manifest = read_manifest(folder)
    file_name = f"{name}.pt"
    if file_name not in manifest:
        known = ", ".join(sorted(key[:-3] for key in manifest)) or "none"
        raise ModelError(f"no zoo weights named {name!r} (available: {known})", folder / file_name)
    return load_weights_file(folder / file_name, manifest[file_name])[0]


ZOO_MODEL_PREFIX = "zoo:"  # `protect --model zoo:NAME`: white-box against a committed zoo model


def load_named_model(reference: str | Path) -> nn.Module:
    """The model `protect --model` names: ``zoo:NAME`` (a committed zoo model, e.g. the public
    base model an attacker fine-tunes) or a checkpoint that ``harmonycloak train`` wrote.

    Raises:
        ModelError: no such zoo model or checkpoint, or one that does not load.
    """
    from harmonycloak.models.checkpoint import load_checkpoint

    text = str(reference)
    if text.startswith(ZOO_MODEL_PREFIX):
        return load_zoo_model(text.removeprefix(ZOO_MODEL_PREFIX))
    return load_checkpoint(reference)[0]
