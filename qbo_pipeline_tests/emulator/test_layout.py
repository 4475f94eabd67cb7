"""The emulator's modules keep moto's shape: no import cycles, and backends that know no HTTP.

Read from the source with ``ast`` (every import counts: top level, inside functions, under
``TYPE_CHECKING``), so a cycle hidden behind a deferred import is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import qbo_pipeline.emulator

PACKAGE = qbo_pipeline.emulator.__name__
ROOT = Path(qbo_pipeline.emulator.__file__).parent

# The parts that hold state and rules; HTTP is put in front of them by responses and routes.
BACKENDS = ("accounting.models", "accounting.entities", "accounting.query",
            "accounting.persistence", "oauth.models", "exceptions", "events", "faults",
            "limits", "webhooks", "service")
HTTP_LIBRARIES = ("starlette", "uvicorn")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


MODULES = {_module_name(path): path for path in ROOT.rglob("*.py")}


def _imported_names(module: str) -> set[str]:
    """Every dotted name ``module`` imports, and for ``from X import Y`` both X and X.Y."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{module}: use absolute imports"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _import_graph() -> dict[str, set[str]]:
    # A module's own ancestors are left out: ``from qbo_pipeline.emulator.accounting import
    # query`` names the package, whose ``__init__`` holds only its docstring.
    return {module: {name for name in _imported_names(module)
                     if name in MODULES and name != module and not module.startswith(name + ".")}
            for module in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules (depth first), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module]):
            found = visit(imported)
            if found:
                return found
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module)
        if found:
            return found
    return None


def test_the_emulator_modules_import_each_other_without_a_cycle() -> None:
    cycle = _cycle(_import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_backends_know_no_http() -> None:
    for backend in BACKENDS:
        module = f"{PACKAGE}.{backend}"
        http = {name for name in _imported_names(module)
                if name.split(".")[0] in HTTP_LIBRARIES}
        assert not http, f"{module} imports {sorted(http)}"


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
