"""The package as pip installs it: runtime dependencies are what the code imports, optional
packages say which extra to install, and the wheel carries the example, py.typed and the zoo."""

from __future__ import annotations

import ast
import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import harmonycloak
from harmonycloak.errors import MissingDependencyError
from harmonycloak.optional import EXTRAS, import_optional

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harmonycloak"
MOVED_TO_EXTRAS = {"lameenc", "pretty_midi", "symusic", "miditok", "music21", "muspy"}  # not needed to protect music


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0].split("[")[0]
    for separator in "<>=!~ ":
        name = name.split(separator)[0]
    return name.strip().lower().replace("_", "-")


def imported_modules() -> dict[str, set[str]]:
    """Third-party top-level module → the package's files that import it with an import statement."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "harmonycloak":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_runtime_dependencies_are_what_the_package_imports():
    distributions = packages_distributions()
    runtime = {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    imported = imported_modules()
    comes_with = {"starlette": "fastapi"}  # imported by the app, installed with fastapi
    needed = {requirement_name(distributions[module][0]) for module in imported
              if module not in EXTRAS and comes_with.get(module) not in EXTRAS}
    assert needed == runtime
    assert not {requirement_name(name) for name in MOVED_TO_EXTRAS} & runtime
    # an optional module is imported through import_optional, or directly only where a command that
    # needs it runs: the transcription measure (inside a try), the app (`serve` imports it on start)
    allowed = {"onnxruntime": ("harmonycloak/metrics/transcription.py",), "fastapi": ("harmonycloak/app/",),
               "uvicorn": ("harmonycloak/app/",), "starlette": ("harmonycloak/app/",)}
    for module in (*EXTRAS, *comes_with):
        assert all(path.startswith(allowed.get(module, ("nowhere",))) for path in imported.get(module, ())), module


def test_every_optional_module_is_in_the_extra_its_error_names():
    extras = {name: {requirement_name(r) for r in requirements}
              for name, requirements in pyproject()["project"]["optional-dependencies"].items()}
    for module, extra in EXTRAS.items():
        assert requirement_name(packages_distributions().get(module, [module])[0]) in extras[extra], module
    assert "harmonycloak[bench,cluster,app]" in pyproject()["project"]["optional-dependencies"]["test"]
    for name in MOVED_TO_EXTRAS - set(EXTRAS):  # the tests' own comparison libraries
        assert requirement_name(name) in extras["test"]


def test_a_missing_optional_package_is_a_one_line_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"the Ray backend needs ray: pip install 'harmonycloak\[cluster\]'"):
        import_optional("ray", "the Ray backend")


def test_the_version_is_the_package_metadata_and_the_command_prints_it(capsys):
    from importlib.metadata import version

    from harmonycloak.cli import main

    assert harmonycloak.__version__ == version("harmonycloak") == pyproject()["project"]["version"]
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"harmonycloak {harmonycloak.__version__}"


def test_the_example_song_is_found_through_the_package():
    from harmonycloak.examples import EXAMPLE_MIDI, EXAMPLE_SONG, example_path

    assert example_path(EXAMPLE_SONG).read_bytes() == (ROOT / "examples" / "elf-land.ogg").read_bytes()
    assert example_path(EXAMPLE_MIDI).is_file() and "Licence" in example_path("README.md").read_text()


def test_the_wheel_carries_the_examples_py_typed_and_the_zoo_and_asks_only_for_runtime_dependencies(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE, source / "harmonycloak", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("harmonycloak-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = email.message_from_bytes(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    for name in ("harmonycloak/examples/elf-land.ogg", "harmonycloak/examples/bwv1.6.mid",
                 "harmonycloak/examples/README.md", "harmonycloak/py.typed", "harmonycloak/zoo/weights/MANIFEST.json"):
        assert name in names, name
    weights = {Path(n).name for n in names if n.startswith("harmonycloak/zoo/weights/") and n.endswith(".pt")}
    assert weights == {p.name for p in (PACKAGE / "zoo" / "weights").glob("*.pt")} and weights
    requirements = metadata.get_all("Requires-Dist")
    unconditional = {requirement_name(r) for r in requirements if "extra ==" not in r}
    assert unconditional == {requirement_name(r) for r in pyproject()["project"]["dependencies"]}
    assert not unconditional & ({requirement_name(n) for n in MOVED_TO_EXTRAS} | {"ray", "onnxruntime", "fastapi"})
    assert {"bench", "cluster", "app", "test"} <= set(metadata.get_all("Provides-Extra"))
    assert "Typing :: Typed" in metadata.get_all("Classifier")
