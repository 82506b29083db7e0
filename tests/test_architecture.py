"""The package's shape: no import cycles (imports inside functions included), and every default
written once, in settings."""

import ast
import re
from pathlib import Path

import harmonycloak

PACKAGE = Path(harmonycloak.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports anywhere in its source (functions included).

    `from a.b import c` is an edge to `a.b.c` when that is a module, else to `a.b`; a name
    that is not a module of the package is followed up to its nearest module.
    """
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                           for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("harmonycloak") and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_including_imports_inside_functions():
    graph = import_graph()
    assert "harmonycloak.flows.audio.protect" in graph["harmonycloak.flows.dispatch"]  # the graph sees the package
    assert cycles(graph) == []


def test_the_flows_stand_side_by_side_and_nothing_below_them_climbs_up():
    graph = import_graph()
    for kind in ("audio", "midi"):
        for flow in ("protect", "verify", "train"):
            assert f"harmonycloak.flows.{kind}.{flow}" in graph
    lower = [name for name in graph if name.split(".")[1:2] and name.split(".")[1] in ("io", "psycho", "cloak", "models", "optim", "metrics", "purification",
                                                               "corpus", "settings", "resampling", "music")]
    for name in lower:
        climbing = {target for target in graph[name] if target.startswith(("harmonycloak.flows", "harmonycloak.bench",
                                                                          "harmonycloak.cli"))}
        assert not climbing, f"{name} imports {climbing}"


def test_defaults_are_written_once_in_settings():
    """The working rate, the segment length, the full-scale level and the window range are literals only in settings."""
    literals = {"working rate": re.compile(r"\b16_?000\b"), "segment": re.compile(r"\b2\.56\b"),
                "full scale": re.compile(r"\b96\.0\b"),
                "window range": re.compile(r"\b100\.0\b.*\bms\b|\b5\.0 <=")}
    allowed = {"harmonycloak/settings.py",
               "harmonycloak/metrics/embeddings.py",  # VGGish's own input rate, fixed by its released weights
               "harmonycloak/io/formats.py",  # the sample rates each codec accepts
               "harmonycloak/io/mp3.py"}  # the sample rates an MP3 frame header can state
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        relative = str(path.relative_to(PACKAGE.parent))
        if relative in allowed:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            for what, pattern in literals.items():
                if pattern.search(code):
                    offenders.append(f"{relative}:{number} ({what}): {line.strip()}")
    assert offenders == []


def test_every_import_of_the_package_resolves_including_those_inside_functions():
    """An import inside a function runs only when the function does; a stale one is found here."""
    import importlib

    stale = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                    and node.module.startswith("harmonycloak")):
                continue
            try:
                module = importlib.import_module(node.module)
            except ImportError as error:
                stale.append(f"{path.name}:{node.lineno} {node.module} ({error})")
                continue
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        stale.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert stale == []
