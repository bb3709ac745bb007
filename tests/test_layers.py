"""The package's import graph: no cycles, and no lower floor importing a higher one.

Every ``import`` of a ``forecast`` module counts, at module level or inside a function
(only ``if TYPE_CHECKING:`` blocks are left out: they never run). Floors, top down:
cli → pipeline → run → tuning → combine (ensemble) → backtesting → models → distributions and
pure numerics → schema / limits / exceptions.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import forecast

ROOT = Path(forecast.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The forecast modules ``path`` imports (``from forecast.x import y`` counts as
    ``forecast.x.y`` when that is a module, else ``forecast.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for stmt in node.body for n in ast.walk(stmt)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != me and name.startswith("forecast"):
                out.add(name)
    return out


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, frozenset[str]]:
    files = [p for p in ROOT.rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): frozenset(_imports(p, modules)) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


# A package's __init__ importing its own submodules is how packages re-export; a submodule
# importing its package (``forecast`` or ``forecast.models``) is an arrow up to it.
def _graph_without_package_reexports() -> dict[str, set[str]]:
    g = import_graph()
    return {m: {d for d in deps if not (m in ("forecast", "forecast.models", "forecast.combine")
                                         and d.startswith(m + "."))}
            for m, deps in g.items()}


def test_graph_sees_function_level_imports():
    # Guards the tests below: imports inside functions are in the graph.
    g = import_graph()
    assert "forecast.combine" in g["forecast.pipeline"]  # only imported inside backtest()
    assert "forecast.models.streams" in g["forecast.pipeline.totals"]  # only imported inside totals()


def test_no_import_cycle_among_forecast_modules():
    assert _cycles(_graph_without_package_reexports()) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


HIGH = ("forecast.combine", "forecast.tuning", "forecast.pipeline", "forecast.run", "forecast.cli")


@pytest.mark.parametrize("module", sorted(m for m in import_graph()
                                          if m.startswith("forecast.models")
                                          or m in ("forecast.backtesting", "forecast.specs")))
def test_lower_floors_never_import_higher_ones(module):
    g = import_graph()
    high = {d for d in g[module] if d.startswith(HIGH)}  # a high package's submodules too
    assert not high, f"{module} imports {sorted(high)}"


def test_tuning_sits_above_combine_and_below_pipeline():
    g = import_graph()
    assert {"forecast.backtesting", "forecast.combine"} <= g["forecast.tuning"]
    assert not g["forecast.tuning"] & {"forecast.pipeline", "forecast.run", "forecast.cli"}
    assert "forecast.tuning" not in g["forecast.combine"]


def test_backtesting_does_not_read_spec_files():
    assert "forecast.specs" not in import_graph()["forecast.backtesting"]


def test_base_fitted_guard_point_one_way():
    g = import_graph()
    assert "forecast.models.fitted" in g["forecast.models.base"]
    assert "forecast.models.guard" in g["forecast.models.fitted"]
    for low, high in [("forecast.models.fitted", "forecast.models.base"),
                      ("forecast.models.guard", "forecast.models.base"),
                      ("forecast.models.guard", "forecast.models.fitted"),
                      ("forecast.models.ladder", "forecast.models.base"),
                      ("forecast.models.ladder", "forecast.models.fitted")]:
        assert high not in g[low], f"{low} imports {high}"
