"""tests/conftest.py shares the cores well: under pytest-xdist the files with the longest tests
start first; a serial run keeps the usual order."""
from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def toy(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.fixture(scope="module")
        def shared():
            return object()

        def test_a1(shared): pass
        def test_a2(shared): pass
        def test_a3(): pass
        """,
        test_b="""
        import pytest

        def test_b1(): pass

        @pytest.mark.slow(50)
        def test_b2(): pass

        @pytest.mark.slow(5)
        def test_b3(): pass
        """)
    return pytester


def _ran(res: pytest.RunResult) -> list[str]:
    return [ln.split(" PASSED ")[-1].strip() for ln in res.outlines if " PASSED " in ln]


def test_one_worker_receives_the_longest_file_first(toy):
    # One worker runs the files in the order the controller hands them out.
    res = toy.runpytest_subprocess("-n", "1", "--dist", "loadfile", "--no-loadscope-reorder", "-v",
                                   "-p", "no:cacheprovider")
    res.assert_outcomes(passed=6)
    assert _ran(res) == ["test_b.py::test_b1", "test_b.py::test_b2", "test_b.py::test_b3",
                         "test_a.py::test_a1", "test_a.py::test_a2", "test_a.py::test_a3"]


def test_a_serial_run_keeps_the_file_order(toy):
    res = toy.runpytest_subprocess("-n", "0", "-v", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=6)
    assert [ln.split(" ")[0] for ln in res.outlines if " PASSED" in ln] == [
        "test_a.py::test_a1", "test_a.py::test_a2", "test_a.py::test_a3",
        "test_b.py::test_b1", "test_b.py::test_b2", "test_b.py::test_b3"]
