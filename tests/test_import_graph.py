"""The import graph of launch, fhirmaps and smartapp, read from the source: no cycles, and the
layers point one way (smartapp over launch and fhirmaps; fhirmaps pure).

Every import counts: at module level, inside functions and under `if TYPE_CHECKING:`. A local or
type-only import hides a cycle from Python's import machinery, not from the design, so none is
allowed here. Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`; those implicit
edges are not drawn (a package's `__init__` that collects its modules would otherwise be a cycle
with each of them).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("launch", "fhirmaps", "smartapp")
# Modules that reach the network or a database: fhirmaps maps data it is given and does no I/O.
IO_MODULES = (
    "aiohttp",
    "aiosqlite",
    "asyncpg",
    "http.client",
    "httpx",
    "httpx2",
    "psycopg",
    "requests",
    "socket",
    "sqlalchemy",
    "ssl",
    "urllib.request",
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (ours: resolved to the module; others: as written)
    line: int
    kind: str  # "module level" | "in a function" | "TYPE_CHECKING"

    def where(self) -> str:
        return f"{self.source} -> {self.target} (line {self.line}, {self.kind})"


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, ours: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, base] if base else parts)
    # `from a import b` imports the module a.b when there is one, else a name defined in a.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in ours else base for a in node.names]


def _ours(name: str, ours: set[str]) -> str:
    """`name` itself, or the module of ours it lies in (`a.b.C` -> `a.b`)."""
    probe = name
    while probe not in ours and "." in probe:
        probe = probe.rsplit(".", 1)[0]
    return probe if probe in ours else name


def imports() -> list[Import]:
    table = modules()
    ours = set(table)
    found: list[Import] = []
    for module, path in table.items():
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, kind: str, module: str = module, is_package: bool = is_package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _is_type_checking(child.test):
                    for item in child.body:
                        visit(ast.Module(body=[item], type_ignores=[]), "TYPE_CHECKING")
                    for item in child.orelse:
                        visit(ast.Module(body=[item], type_ignores=[]), kind)
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for name in _names(child, module, is_package, ours):
                        target = _ours(name, ours)
                        if target != module:
                            found.append(Import(module, target, child.lineno, kind))
                inner = kind
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    inner = "in a function" if kind == "module level" else kind
                visit(child, inner)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "module level")
    return found


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component, each as [a, b, ..., a]."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(node: str) -> None:  # Tarjan
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                strongconnect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return [_shortest_cycle(graph, component) for component in components]


def _shortest_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, set()) & component):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_find_cycles_names_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "x": {"y"}, "y": {"x"}}
    assert sorted(find_cycles(graph)) == [["a", "b", "c", "a"], ["x", "y", "x"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_is_read() -> None:
    edges = {(i.source, i.target) for i in imports()}
    assert ("smartapp.engine", "fhirmaps.read") in edges
    assert ("launch.flow", "launch.scopes") in edges
    assert len(modules()) > 100


def test_no_import_cycles() -> None:
    found = imports()
    graph: dict[str, set[str]] = {}
    for item in found:
        graph.setdefault(item.source, set()).add(item.target)
    messages = []
    for cycle in find_cycles(graph):
        steps = [next(i for i in found if (i.source, i.target) == pair).where() for pair in pairwise(cycle)]
        messages.append(" -> ".join(cycle) + "\n    " + "\n    ".join(steps))
    assert not messages, "import cycles:\n" + "\n".join(messages)


def _offending(sources: tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    def inside(name: str, roots: tuple[str, ...]) -> bool:
        return any(name == root or name.startswith(root + ".") for root in roots)

    return [i.where() for i in imports() if inside(i.source, sources) and inside(i.target, targets)]


def test_launch_and_fhirmaps_never_import_smartapp() -> None:
    wrong = _offending(("launch", "fhirmaps"), ("smartapp",))
    assert not wrong, "launch and fhirmaps sit below smartapp:\n" + "\n".join(wrong)


def test_fhirmaps_imports_neither_launch_nor_io() -> None:
    wrong = _offending(("fhirmaps",), ("launch", *IO_MODULES))
    assert not wrong, "fhirmaps is pure mapping (no EHR access, network or database):\n" + "\n".join(wrong)
