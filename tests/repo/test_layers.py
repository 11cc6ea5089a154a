"""The layers of ``lessons_lib`` read off the import graph (docs/contributing.md, "The layers").

In order: the mathematics (the flat top-level modules), ``mnist``, ``explorers``, ``course``. A
module imports only from its own layer and the layers above it; no library module imports the
tests, the benchmarks or the tools; the tests import the benchmarks only from ``tests/benchmarks``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("maths", "mnist", "explorers", "course")
OUTSIDE = ("benchmarks", "tests", "tools")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of the modules that ``path`` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def layer(module: str) -> str | None:
    """The layer of a ``lessons_lib`` module, or None for any other module."""
    parts = module.split(".")
    if parts[0] != "lessons_lib":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "maths"


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import in ``graph`` (importer → imported names) that goes against the layers."""
    found = []
    for importer, imported in sorted(graph.items()):
        own = layer(importer)
        for name in sorted(imported):
            if name.split(".")[0] in OUTSIDE and own is not None:
                found.append(f"{importer} imports {name}: the library imports no {name.split('.')[0]}/")
            if own is not None and layer(name) is not None and name != "lessons_lib" \
                    and LAYERS.index(layer(name)) > LAYERS.index(own):
                found.append(f"{importer} ({own}) imports {name} ({layer(name)}), a layer below it")
            if importer.startswith("tests.") and not importer.startswith("tests.benchmarks") \
                    and name.split(".")[0] == "benchmarks":
                found.append(f"{importer} imports {name}: only tests/benchmarks may test benchmark code")
    return found


def graph_of(*folders: str) -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


def test_the_library_and_the_tests_keep_the_layers():
    graph = graph_of("lessons_lib", "tests")
    assert any(layer(m) == "course" for m in graph) and any(layer(m) == "mnist" for m in graph)
    assert violations(graph) == []


@pytest.mark.parametrize("importer, name", [
    ("lessons_lib.densities", "lessons_lib.mnist.data"),       # the mathematics reaching down
    ("lessons_lib.mnist.sampling", "lessons_lib.explorers"),   # an application reaching down
    ("lessons_lib.explorers.base", "lessons_lib.course.checks"),
    ("lessons_lib.course.homework", "benchmarks.course"),      # the library importing a benchmark
    ("tests.core.test_sde", "benchmarks.sde"),                 # a test importing a benchmark
])
def test_a_deliberate_break_is_caught(importer, name):
    assert len(violations({importer: {name}})) == 1


def test_relative_imports_are_resolved():
    names = imports_of(ROOT / "lessons_lib" / "samplers.py")
    assert "lessons_lib._validate" in names and "lessons_lib.noise.validate_sigmas" in names
