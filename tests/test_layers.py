"""The package's layers stay in order: read from the sources' imports (every ``import`` and
``from ... import`` of cutpaste_tf/ and launch/, those inside functions too), no module imports a
module of a higher layer, two parts of one layer never import each other, and no modules import
each other in a circle. To see the imports of a module: ``python -m pytest -q
tests/test_layers.py`` names every one that breaks the order."""

from __future__ import annotations

import ast
import pathlib

import pytest
from helpers import ROOT

# The layers, lowest first. A part is a module at the package's root (``files`` is
# cutpaste_tf/files.py), a folder of it (``data`` is cutpaste_tf/data/), ``cutpaste_tf`` (its
# __init__.py, the front door's names) or ``launch`` (the command-line entry points). A part
# imports parts of lower layers only.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("release", "storage", "config", "console", "plots", "devices"),  # leaves
    ("files",),
    ("rundir", "ops", "models"),
    ("data", "density"),
    ("training", "evaluation", "localization"),
    ("serving",),
    ("pipeline",),  # one category's run
    ("reporting",),  # a run's tables and reports
    ("analysis", "benchmark"),  # over runs: experiments, studies, analyses; speed
    ("settings",),  # settings by flag name -> typed configs
    ("driver",),  # the one driver of a run
    ("api",),  # train, experiment, load
    ("cutpaste_tf",),
    ("launch",),
)
PACKAGES = ("cutpaste_tf", "launch")


def module_files() -> dict[str, pathlib.Path]:
    """Dotted module name -> its file, for every module of cutpaste_tf/ and launch/."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: pathlib.Path, modules: set[str]) -> set[str]:
    """The project's modules that the module ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                          for alias in node.names]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:  # import a.b.c of a module a.b
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def part_of(module: str) -> str:
    """The layer part a module belongs to (see :data:`LAYERS`)."""
    parts = module.split(".")
    if parts[0] == "launch" or len(parts) == 1:
        return parts[0]
    return parts[1]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports(name, path, set(files)) for name, path in files.items()}


def test_every_part_has_a_layer(graph):
    layered = {part for layer in LAYERS for part in layer}
    assert {part_of(m) for m in graph} == layered
    assert len(layered) == sum(len(layer) for layer in LAYERS)  # each part once


def test_no_module_imports_a_higher_layer_or_a_neighbour_in_its_own(graph):
    level = {part: i for i, layer in enumerate(LAYERS) for part in layer}
    wrong = sorted(f"{a} -> {b} (layer {level[part_of(a)]} imports layer {level[part_of(b)]})"
                   for a, targets in graph.items() for b in targets
                   if part_of(a) != part_of(b) and level[part_of(b)] >= level[part_of(a)])
    assert not wrong, "\n".join(wrong)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's strongly connected
    components of more than one module, or of one that imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_modules_import_each_other_in_a_circle(graph):
    assert circles(graph) == []


def test_the_checks_find_what_they_look_for():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert part_of("cutpaste_tf.data.index") == "data" and part_of("cutpaste_tf.rundir") == (
        "rundir") and part_of("launch.train") == "launch"
    source = ROOT / "cutpaste_tf" / "driver.py"
    modules = set(module_files())
    found = imports("cutpaste_tf.driver", source, modules)
    assert {"cutpaste_tf.rundir", "cutpaste_tf.pipeline.runner", "cutpaste_tf.settings"} <= found
    assert "cutpaste_tf" not in found  # `from cutpaste_tf import rundir` is rundir's
