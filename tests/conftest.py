"""How the suite shares the cores: the order and grouping of tests under pytest-xdist.

``python -m pytest`` runs on every core (``-n auto --dist loadgroup`` in ``pyproject.toml``):
a worker that runs dry pulls the next unit of work, one test or one group of tests. Two
rules keep both cores busy to the end and compute nothing twice:

* **Tests sharing a module-scoped fixture of their own file form one group** (one worker),
  so the fixture (a pipeline run, a Dask cluster, 66 CLI processes) is built once, not once
  per worker. Nothing needs marking by hand; a file may still add
  ``pytest.mark.xdist_group(...)`` itself.
* **The longest units start first** (longest-processing-time scheduling): a two-minute test
  pulled last would keep one core busy minutes after the other ran out of work. A test
  marks its cost with ``@pytest.mark.slow(seconds)`` (seconds on a quiet two-core machine;
  a rough figure is enough, it only orders the queue). A group costs its largest mark, so a
  module-wide ``pytestmark = pytest.mark.slow(s)`` gives the whole file's cost.

A serial run (``-n 0``) keeps the order of the files: there the order changes nothing but the
time module-scoped fixtures stay alive.
"""
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow(seconds): rough run time on a quiet two-core machine; under pytest-xdist "
                   "the longest tests start first (tests/conftest.py)")


def _own_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a module-scoped fixture defined in its own test file."""
    info = getattr(item, "_fixtureinfo", None)
    module = item.getparent(pytest.Module)
    if info is None or module is None:
        return False
    return any(fd.scope == "module" and fd.baseid == module.nodeid
               for defs in info.name2fixturedefs.values() for fd in defs)


def _cost(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    if mark is None:
        return 0.0
    return float(mark.args[0] if mark.args else mark.kwargs.get("seconds", 10.0))


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group marks into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # not an xdist worker: keep the file order
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _own_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.getparent(pytest.Module).nodeid))

    def unit(item: pytest.Item) -> str:
        mark = item.get_closest_marker("xdist_group")
        return item.nodeid if mark is None else f"@{mark.args[0] if mark.args else mark.kwargs.get('name')}"

    cost: dict[str, float] = {}
    for item in items:
        cost[unit(item)] = max(cost.get(unit(item), 0.0), _cost(item))
    # Every worker sorts the same collection the same way (a stable sort on a pure key), as
    # xdist requires; the controller hands the units out in this order.
    items.sort(key=lambda it: -cost[unit(it)])
