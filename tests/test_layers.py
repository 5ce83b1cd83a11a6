"""The house's imports point one way: no sparsebench module imports, directly or through others, a
module that imports it back (function-level imports included), so the package reads top-down."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sparsebench"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The sparsebench modules ``path`` imports anywhere in its code (``from a import b`` counts as a.b
    when that is a module, else as a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py") if "conf" not in p.relative_to(PACKAGE).parts[:1]}
    modules = set(paths)
    # A package's __init__ importing its own modules is how it hands names on, not a layer.
    return {name: {m for m in imports_of(path, modules) if not m.startswith(f"{name}.")}
            for name, path in paths.items()}


def test_no_module_imports_itself_back_through_others():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_schemas_are_the_ground_floor():
    graph = import_graph()
    assert graph["sparsebench.schemas"] <= {"sparsebench.errors"}
    assert graph["sparsebench.registry"] <= {"sparsebench.errors"}
    assert graph["sparsebench.seeds"] == set()


def test_the_graph_sees_imports():
    # The check above is only as good as the graph: the runner's imports are seen.
    assert {"sparsebench.identity", "sparsebench.schemas", "sparsebench.measurements"} <= import_graph()["sparsebench.runner"]
