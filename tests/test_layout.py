"""The package layout's import rules, read from the source (nothing is imported).

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a cycle hidden in a
function body is still a cycle for a reader. The rules are the ones each package's docstring states.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module name ``path`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from harness.ledger import recorder`` imports the submodule harness.ledger.recorder
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph(top: str) -> dict[str, set[str]]:
    files = {_module_name(p): p for p in (ROOT / top).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {imported for imported in _imports(path) if imported in files and imported != name}
    return graph


GRAPH = {**_graph("harness"), **_graph("targets")}
ALL_IMPORTS = {
    _module_name(p): set(_imports(p)) for top in ("harness", "targets") for p in (ROOT / top).rglob("*.py")
}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_init_reexports(name: str) -> bool:
    """A facade ``__init__`` importing its own submodules is not a cycle with them."""
    return name.count(".") >= 1 and Path(ROOT, *name.split("."), "__init__.py").exists()


def test_the_graph_is_read() -> None:
    assert "harness.run.stack" in GRAPH and "harness.faults.client" in GRAPH["harness.run.stack"]


def test_no_import_cycles() -> None:
    # a package facade (``harness.checker`` re-exporting its submodules) is left out: its submodules import
    # each other, not the facade, so any cycle through it would be a real one and is still caught below
    graph = {name: {d for d in deps if not (_package_init_reexports(d) and name.startswith(d + "."))}
             for name, deps in GRAPH.items()}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _third_party(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("module", sorted(m for m in ALL_IMPORTS if m.startswith("harness.checker")))
def test_the_checker_imports_no_io(module: str) -> None:
    allowed_roots = {"__future__", "dataclasses", "functools", "typing", "collections", "math", "itertools",
                     "numpy", "pandas", "statistics", "bisect", "heapq", "enum", "operator"}
    for imported in ALL_IMPORTS[module]:
        if imported.startswith("harness."):
            assert imported.startswith("harness.checker"), f"{module} imports {imported}"
        else:
            assert _third_party(imported) in allowed_roots, f"{module} imports {imported}"


@pytest.mark.parametrize("module", sorted(m for m in ALL_IMPORTS if m.startswith("targets")))
def test_targets_never_import_the_harness(module: str) -> None:
    assert not {i for i in ALL_IMPORTS[module] if _third_party(i) == "harness"}, module


@pytest.mark.parametrize("module", sorted(ALL_IMPORTS))
def test_only_locust_ext_and_drivers_import_locust(module: str) -> None:
    # gevent is the run's concurrency model (the controller and the distributed protocol use its greenlets);
    # importing it patches nothing. Locust itself is what may not leak outside these packages.
    imports_locust = any(_third_party(i) == "locust" for i in ALL_IMPORTS[module])
    allowed = (module.startswith(("harness.locust_ext", "harness.drivers.")) or module == "harness.locustfile")
    if module == "harness.drivers.registry":
        allowed = False  # the config names drivers through it without Locust
    assert allowed or not imports_locust, f"{module} imports Locust"


@pytest.mark.parametrize("package, forbidden", [
    ("harness.faults", ("harness.checker", "harness.drivers", "harness.run", "harness.locust_ext", "harness.report")),
    ("harness.ledger", ("harness.checker", "harness.drivers", "harness.run", "harness.locust_ext", "harness.report",
                        "harness.faults", "harness.config")),
    ("harness.run", ("harness.checker", "harness.drivers", "harness.locust_ext", "harness.report")),
    ("harness.report", ("harness.drivers", "harness.run", "harness.locust_ext", "harness.faults")),
    ("harness.drivers", ("harness.checker", "harness.report", "harness.locust_ext")),
])
def test_imports_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    for module, deps in GRAPH.items():
        if module == package or module.startswith(package + "."):
            bad = sorted(d for d in deps if d.startswith(forbidden))
            assert not bad, f"{module} imports {bad}"


def test_nothing_imports_locust_ext_but_the_locustfile() -> None:
    users = sorted(m for m, deps in GRAPH.items() if not m.startswith("harness.locust_ext")
                   and any(d.startswith("harness.locust_ext") for d in deps))
    assert users == ["harness.locustfile"]


@pytest.mark.parametrize("folder", sorted(p.parent for p in (ROOT / "harness").rglob("__init__.py")))
def test_every_package_opens_with_its_job(folder: Path) -> None:
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
    assert doc and len(doc) > 40, f"{folder} has no docstring saying its job"
    if folder != ROOT / "harness":
        assert "import" in doc, f"{folder}'s docstring does not say what it may import"
