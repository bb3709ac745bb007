"""Write outputs completely or not at all, and never over what is not ours.

Output folders are built in a hidden temporary folder beside the destination
and moved into place only when complete, so an interrupted run never leaves a
half-written folder. The first file written into that folder is the marker
``.incident-forecast.json``; it is how a later ``--force`` (or the demo, or
``forecast report``) recognises a folder this tool made. A folder that is not
ours is never replaced or written into, whatever the flags: it may hold the
user's own files. Some folders are refused even when they look like ours: the
root, the home folder, the working folder and its ancestors, a git checkout
and any folder holding an input of the run.

Every CSV the toolkit writes goes through :func:`write_csv`, which defuses
spreadsheet formulas in text cells (CSV injection).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from forecast._version import __version__
from forecast.exceptions import ConfigError, ForecastWarning, OutputExistsError

MARKER = ".incident-forecast.json"
TOOL = "incident-forecast"
# A backtest --out folder of versions before the marker: exactly these files.
_OLD_BACKTEST = frozenset({"backtest.csv", "scores.csv", "comparison.csv"})
# OWASP CSV-injection advice: a spreadsheet treats cells starting with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

PathLike = str | os.PathLike
Protected = Iterable[PathLike | None]


def _advice(option: str) -> str:
    return (f"choose a new output folder ({option}); --force only replaces folders written by "
            f"incident-forecast (they hold {MARKER})")


# ----------------------------------------------------------------------------- ownership
def marker(command: str) -> dict[str, Any]:
    """The content of :data:`MARKER` for an output of ``command`` written by this process.

    ``pid`` and ``host`` tell a later run whether the writer may still be running.
    """
    return {"tool": TOOL, "version": __version__, "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "pid": os.getpid(),
            "host": socket.gethostname()}


def read_marker(folder: PathLike) -> dict[str, Any] | None:
    """The marker of ``folder`` as a dict, or None when it has none (or an unreadable one)."""
    return _json_with_tool(Path(folder) / MARKER, exact=True)


def _json_with_tool(path: Path, *, exact: bool) -> dict[str, Any] | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 10_000_000:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tool = doc.get("tool") if isinstance(doc, dict) else None
    if not isinstance(tool, str) or not (tool == TOOL if exact else tool.startswith(TOOL)):
        return None
    return doc


def is_ours(folder: PathLike) -> bool:
    """Whether ``folder`` was written by incident-forecast (this version or an earlier one).

    Ours means: it holds :data:`MARKER`; or a ``run.json`` whose ``tool``
    starts with ``incident-forecast`` (run folders of earlier versions); or
    exactly ``backtest.csv``, ``scores.csv`` and ``comparison.csv`` (a
    ``backtest --out`` folder of earlier versions).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    if read_marker(folder) is not None or _json_with_tool(folder / "run.json", exact=False) is not None:
        return True
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    return {p.name for p in entries} == _OLD_BACKTEST and all(p.is_file() and not p.is_symlink() for p in entries)


def _never(real: Path, protected: Protected) -> str | None:
    """Why the existing folder ``real`` (symlinks resolved) may never be replaced; None if it may."""
    if real == Path(real.anchor):
        return "it is the root folder"
    try:
        if real == Path.home().resolve():
            return "it is your home folder"
    except (RuntimeError, OSError):  # no home folder known: nothing to protect
        pass
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        cwd = None
    if cwd is not None and (real == cwd or real in cwd.parents):
        return "it is the working folder" if real == cwd else f"it holds the working folder {cwd}"
    if (real / ".git").exists():
        return "it holds .git (a git repository)"
    for p in protected:
        if p is None or str(p) == "":
            continue
        pr = Path(p).expanduser().resolve()
        if pr == real or real in pr.parents:
            return f"it holds {pr.name}, an input of this command"
    return None


# ----------------------------------------------------------------------------- checks
def check_writable(dest: PathLike, *, force: bool = False, protected: Protected = (),
                   option: str = "--out") -> None:
    """Fail early, before any work, unless an output FOLDER may be written at ``dest``.

    A new path or an empty folder may be written; a folder of ours only with
    ``force``; any other folder never.

    Parameters
    ----------
    dest : the output folder (symlinks are followed: a link to a folder counts as that folder).
    force : replace an existing folder written by incident-forecast.
    protected : input files (config, events, ...): a folder holding one is never replaced.
    option : how the user names the folder, for the message (e.g. ``"--out"``).

    Raises
    ------
    OutputExistsError : one line naming the folder, why it is refused and what to do.
    """
    dest = Path(dest)
    if dest.is_symlink() and not dest.exists():
        raise OutputExistsError(f"{dest} is a broken symbolic link; remove it or {_advice(option)}.")
    real = dest.resolve()
    shown = f"{dest} (a link to {real})" if real != dest.absolute() and dest.is_symlink() else str(dest)
    if not real.exists():
        return
    if not real.is_dir():
        raise OutputExistsError(f"{shown} is a file, not a folder; {_advice(option)}.")
    why = _never(real, protected)
    if why:
        raise OutputExistsError(f"{shown}: refusing to write the output there: {why}; {_advice(option)}.")
    try:
        empty = not any(real.iterdir())
    except OSError as exc:
        raise OutputExistsError(f"{shown} cannot be read ({exc.strerror}); {_advice(option)}.") from None
    if empty:
        return
    ours = is_ours(real)
    if ours and not force:
        raise OutputExistsError(f"{shown} already exists; pass --force to replace it (or choose another {option}).")
    if not ours:
        raise OutputExistsError(f"{shown} already exists and was not written by incident-forecast, so it is never "
                                f"replaced; {_advice(option)}.")


def check_file_writable(dest: PathLike, *, force: bool = False, protected: Protected = (),
                        parents: bool = False, option: str = "--out") -> None:
    """Fail early unless an output FILE may be written at ``dest``.

    ``dest`` must not be a folder nor one of the ``protected`` inputs; an
    existing file is replaced only with ``force``; its folder must exist
    unless ``parents``.
    """
    dest = Path(dest)
    real = dest.resolve()
    if real.is_dir():
        raise OutputExistsError(f"{dest} is a folder; give {option} a file path (e.g. {dest / 'out.csv'}).")
    for p in protected:
        if p is not None and str(p) != "" and Path(p).expanduser().resolve() == real:
            raise OutputExistsError(f"{dest} is an input of this command; choose another {option} file.")
    if real.exists() and not force:
        raise OutputExistsError(f"{dest} already exists; pass --force to replace it (or choose another {option}).")
    if not parents:
        if not real.parent.exists():
            raise ConfigError(f"{dest}: the folder {dest.parent} does not exist; create it first or choose "
                              f"another {option}.")
        if not real.parent.is_dir():
            raise ConfigError(f"{dest}: {dest.parent} is not a folder; choose another {option}.")


# ----------------------------------------------------------------------------- staging
def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (when unsure: yes)."""
    if os.name == "nt" or pid <= 0:  # on Windows os.kill(pid, 0) would terminate it; pid <= 0 means groups
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's live process
        return True
    return True


def remove_stale(dest: PathLike) -> list[Path]:
    """Remove staging folders of ``dest`` left by runs that died; return what was removed.

    Only ``.NAME.tmp-*`` / ``.NAME.old-*`` folders beside ``dest`` that hold
    our marker with the pid of a process of this machine that no longer runs
    are removed: a concurrent run (also one on another machine sharing the
    folder) keeps its staging, and a folder without the marker is kept.
    """
    dest = Path(dest)
    try:
        siblings = list(dest.parent.iterdir())
    except OSError:
        return []
    removed = []
    prefixes = (f".{dest.name}.tmp-", f".{dest.name}.old-")
    for p in siblings:
        if not p.name.startswith(prefixes) or p.is_symlink() or not p.is_dir():
            continue
        m = read_marker(p)
        pid = m.get("pid") if m else None
        if m is None or m.get("host", socket.gethostname()) != socket.gethostname():
            continue
        if isinstance(pid, int) and not isinstance(pid, bool) and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _cannot_create(folder: Path, exc: OSError, option: str) -> ConfigError:
    return ConfigError(f"cannot create {folder}: {exc.strerror or exc}; choose another output folder ({option}).")


@contextmanager
def staged_dir(dest: PathLike, *, force: bool = False, command: str = "run", protected: Protected = (),
               option: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder that replaces ``dest`` when the block succeeds.

    The folder starts with the marker (``command`` recorded in it). On error
    it is removed and ``dest`` is left untouched. An existing ``dest`` (checked
    with :func:`check_writable`) is renamed aside only once the new folder is
    complete, and deleted only after the new one is in place. Missing parent
    folders are created.
    """
    protected = list(protected)
    check_writable(dest, force=force, protected=protected, option=option)
    real = Path(dest).resolve()
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot_create(real.parent, exc, option) from None
    remove_stale(real)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.tmp-", dir=real.parent))
    except OSError as exc:
        raise _cannot_create(real, exc, option) from None
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is meant to be shared
        (tmp / MARKER).write_text(json.dumps(marker(command), indent=2), encoding="utf-8")
        yield tmp
        # The run may have taken minutes: check again that dest may still be replaced.
        check_writable(dest, force=force, protected=protected, option=option)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if real.exists():
        old = real.parent / f".{real.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
        real.rename(old)
    tmp.rename(real)
    if old is not None:
        _discard(old, real)


def _discard(old: Path, dest: Path) -> None:
    """Delete the replaced folder ``old``: only if it is empty or ours (as checked before the run)."""
    try:
        if not any(old.iterdir()):
            old.rmdir()
            return
    except OSError:
        return
    if is_ours(old):
        shutil.rmtree(old, ignore_errors=True)
    else:  # changed during the run; never delete what is not ours
        warnings.warn(f"the previous contents of {dest} were kept in {old}", ForecastWarning, stacklevel=3)


@contextmanager
def staged_file(dest: PathLike, *, force: bool = False, protected: Protected = (), parents: bool = True,
                option: str = "--out") -> Iterator[Path]:
    """Yield a temporary path that is renamed to ``dest`` when the block succeeds.

    Checked with :func:`check_file_writable`; with ``parents=False`` the
    destination's folder must already exist (output files of the CLI).
    """
    dest = Path(dest)
    check_file_writable(dest, force=force, protected=protected, parents=parents, option=option)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write {dest}: {exc.strerror or exc}; choose another {option}.") from None
    tmp = Path(name)
    os.close(fd)
    tmp.chmod(0o644)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dest)


# ----------------------------------------------------------------------------- CSV
def defuse(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would run as a formula."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def write_csv(frame: pd.DataFrame, path: PathLike, **kwargs: Any) -> None:
    """``frame.to_csv(path, **kwargs)`` with text cells defused against CSV injection.

    Text cells (object, string or categorical columns) that begin with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'``
    (OWASP advice); numbers are written as they are, so ``-1.5`` in a numeric
    column stays ``-1.5``. The readers of the toolkit strip the ``'`` again.
    The frame itself is not modified.

    Python's csv writer leaves a field holding a bare carriage return
    unquoted when lines end in ``\n``, which splits the row on reading; when
    a text cell holds one, lines end in ``\r\n`` (as RFC 4180 has it) so such
    fields are quoted.
    """
    out = frame.copy(deep=False)  # columns replaced below are new objects: the caller's frame stays as it was
    has_cr = False
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype):
            col = col.astype(object)
            out.isetitem(i, col.map(defuse))
            has_cr = has_cr or bool(col.map(lambda v: isinstance(v, str) and "\r" in v).any())
    if has_cr:
        kwargs.setdefault("lineterminator", "\r\n")
    out.to_csv(path, **kwargs)
