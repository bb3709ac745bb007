"""The corpus of broken and hostile inputs (``tests/safety_corpus.py``), each through the real CLI.

Each case runs in its own process with a timeout (an in-process runner cannot
see a hang) in a fresh folder (forked from a warm process: ``cli_process.py``), and must: exit with the expected code, say what is
wrong in ``error:`` lines that name the column/rows/folder, print no traceback,
print only ``error:``/``warning:`` lines (so a hostile name cannot forge one), and
leave every file outside its output folder byte-identical, with no staging left.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli_process import run_cli
from safety_corpus import cases, materialise

TIMEOUT = 120  # seconds; a hang is a failure, not a slow pass

CASES = cases()


def _snapshot(folder: Path, skip: str | None) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if skip and (rel == skip or rel.startswith(skip + "/")):
            continue
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_corpus_is_large_enough_and_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


# 66 CLI processes in one module fixture: under xdist the file is one unit, started early.
pytestmark = pytest.mark.slow(20)


def _run(case, folder: Path):
    folder.mkdir()
    materialise(case, folder)
    before = _snapshot(folder, case.out)
    try:
        proc = run_cli(*case.argv, cwd=folder, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc = None
    return before, proc


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case run once, as many at a time as there are cores (each is its own process)."""
    root = tmp_path_factory.mktemp("safety")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        futures = {c.name: pool.submit(_run, c, root / c.name) for c in CASES}
    return {name: (root / name, *f.result()) for name, f in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case, outcomes):
    folder, before, proc = outcomes[case.name]
    assert proc is not None, f"no exit within {TIMEOUT} s: a hang"
    err = proc.stderr
    assert "Traceback" not in err and "Traceback" not in proc.stdout, err
    assert proc.returncode == case.code, f"exit {proc.returncode}\n{err}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if case.code == 1:
        assert lines and all(ln.startswith(("error:", "warning:")) for ln in lines), err
        errors = " ".join(ln for ln in lines if ln.startswith("error:")).lower()
        for phrase in case.says:
            assert phrase.lower() in errors, f"{phrase!r} not in:\n{err}"
    elif case.code == 2:  # usage: click's own message, naming the option and the value
        for phrase in case.says:
            assert phrase.lower() in err.lower(), f"{phrase!r} not in:\n{err}"
    elif case.code == 0:
        # Progress text goes to stderr only on a terminal; here every line is a message.
        assert all(ln.startswith("warning:") for ln in lines), err
    after = _snapshot(folder, case.out)
    leftovers = [k for k in after if ".tmp-" in k or ".old-" in k]
    assert not leftovers, leftovers
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    # A file the command was asked to write may appear; nothing else may change.
    allowed = {a for a in case.argv if not a.startswith("-")}
    assert not {k for k in changed if k not in allowed or k in before}, changed
