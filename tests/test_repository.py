"""The repository stands alone: no absolute path of a development machine in any file."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path into a developer's machine (the project's own workspace, a home folder).
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|root|home/[A-Za-z0-9_.-]+)/[A-Za-z0-9_.-]")
SKIP_DIRS = {".git", "reports", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist"}
TEXT = {".py", ".md", ".toml", ".csv", ".json", ".R", ".ipynb", ".txt", ".cfg", ".j2", ".html", ".sh", ""}


def _files():
    for p in ROOT.rglob("*"):
        rel = p.relative_to(ROOT)
        if p.is_file() and not p.is_symlink() and not SKIP_DIRS & set(rel.parts) \
                and not any(part.endswith(".egg-info") or part.startswith("venv") for part in rel.parts) \
                and p.suffix in TEXT and p.stat().st_size < 5_000_000:
            yield p, rel


def test_no_absolute_machine_path_in_the_repository():
    hits = []
    for p, rel in _files():
        text = p.read_text(encoding="utf-8", errors="replace")
        hits += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert not hits, "\n".join(hits[:20])


def test_the_pattern_would_catch_one():
    # Built by concatenation so that this file does not hold a machine path itself.
    assert MACHINE_PATH.search("see /" + "work/shared/reference/x.R")
    assert MACHINE_PATH.search("source /" + "root/venv/bin/activate")
    assert not MACHINE_PATH.search("python tests/reference_data/x.R and ../shared/reference/")
