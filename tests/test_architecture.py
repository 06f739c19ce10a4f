"""The package's shape (docs/architecture.md): layers, no import circle, small modules.

Every import of a tessphot module counts, at module level or inside a function (an import
inside a function still ties the two modules together), except those only for type checkers
(``if TYPE_CHECKING:``), which run nowhere.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

SRC = Path(__file__).resolve().parents[1] / "src" / "tessphot"

#: The layers of docs/architecture.md, low to high: a module imports only from its own
#: layer or lower ones. Keys are the first part of the module name below ``tessphot``.
LAYERS: dict[str, int] = {
    **dict.fromkeys(("", "constants", "version", "logs", "env", "paths"), 0),
    "config": 1,
    **dict.fromkeys(("geometry", "sectors", "timefix", "io", "prf", "timing"), 2),
    "catalog": 3,
    "prepare": 4,
    **dict.fromkeys(("tasks", "todo"), 5),
    "lightcurve": 6,
    **dict.fromkeys(("sources", "photometry", "report", "correct"), 7),
    "runner": 8,
    "evaluation": 9,
    **dict.fromkeys(("demo", "cli"), 10),
}
#: The only upward imports: the public names of the top package, imported at first use
#: (``tessphot.__getattr__``) so that ``import tessphot`` stays light. The modules they
#: import must not import the top package (no circle).
PUBLIC_NAMES: dict[str, set[str]] = {"tessphot": {"tessphot.lightcurve.read"}}
#: Most lines of one module.
MAX_MODULE_LINES = 500


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their ``__init__``)."""
    modules = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """Dotted names of what an import statement imports (relative ones resolved).

    ``from package import name`` depends on the package (whose ``__init__`` runs) and on the
    submodule ``package.name`` if there is one.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def _import_graph() -> dict[str, set[str]]:
    """Which tessphot modules each tessphot module imports."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            for imported in _imported_names(node, package):
                if imported.split(".")[0] != "tessphot":
                    continue
                target = resolve(imported)
                if target is not None and target != name:
                    graph[name].add(target)
        graph.setdefault(name, set())
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: package tessphot.{top} has no layer in LAYERS")
    return LAYERS[top]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module."""
    names = sorted(set(graph) | {t for targets in graph.values() for t in targets})
    number = {name: i for i, name in enumerate(names)}
    edges = [(number[a], number[b]) for a, targets in graph.items() for b in targets]
    rows, cols = zip(*edges, strict=True) if edges else ((), ())
    matrix = csr_matrix((np.ones(len(edges)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(matrix, directed=True, connection="strong")
    members = defaultdict(list)
    for name, label in zip(names, labels, strict=True):
        members[label].append(name)
    return sorted(sorted(group) for group in members.values() if len(group) > 1)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _import_graph()


def test_every_package_has_a_layer(graph):
    for module in graph:
        _layer(module)


def test_no_import_circle(graph):
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_upward_import(graph):
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if _layer(target) > _layer(module) and target not in PUBLIC_NAMES.get(module, ())
    ]
    assert upward == []


def test_modules_are_small():
    large = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert large == {}
