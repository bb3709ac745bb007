"""Write output folders completely or not at all.

Outputs are built in a hidden temporary folder beside the destination and
moved into place only when complete, so an interrupted run never leaves a
half-written folder, and an earlier run is never overwritten unless the
caller says so (``force``) or owns the folder (the demo's ``reports/demo``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from forecast.exceptions import OutputExistsError


def check_writable(dest: Path, *, force: bool = False, owned: bool = False) -> None:
    """Fail early, before any work, if ``dest`` holds an earlier output."""
    if dest.exists() and not (force or owned):
        if dest.is_file() or any(dest.iterdir()):
            raise OutputExistsError(f"{dest} already exists; pass --force to replace it "
                                    f"(or choose another --out).")


@contextmanager
def staged_dir(dest: str | Path, *, force: bool = False, owned: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``dest`` when the block succeeds.

    On error the temporary folder is removed and ``dest`` is left untouched.
    """
    dest = Path(dest)
    check_writable(dest, force=force, owned=owned)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is meant to be shared
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


@contextmanager
def staged_file(dest: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``dest`` when the block succeeds."""
    dest = Path(dest)
    if dest.exists() and not force:
        raise OutputExistsError(f"{dest} already exists; pass --force to replace it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    tmp = Path(name)
    os.close(fd)
    tmp.chmod(0o644)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)
