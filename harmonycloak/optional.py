"""Packages that only some commands need, imported when those commands run.

`pip install harmonycloak` brings what protecting and verifying music needs. The benchmark,
the zoo's training corpus and the Ray backend need more; each is an extra of the package, and
a missing one is a one-line error that says which extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harmonycloak.errors import MissingDependencyError

EXTRAS = {  # module → the extra of pyproject.toml that installs it
    "music21": "bench",
    "muspy": "bench",
    "onnxruntime": "bench",
    "ray": "cluster",
    "fastapi": "app",  # `harmonycloak serve` (harmonycloak.app imports these itself, when serve runs)
    "uvicorn": "app",
}


def import_optional(module: str, purpose: str) -> ModuleType:
    """Import `module`, or say which extra to install for `purpose` ("reading MusicXML").

    Raises:
        MissingDependencyError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(f"{purpose} needs {module}: pip install 'harmonycloak[{EXTRAS[module]}]'") from error
