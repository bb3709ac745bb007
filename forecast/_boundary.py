"""The CLI's error boundary: what a user sees when something goes wrong.

Every command ends with one of these exit codes:

==== ==========================================================================
0    success
1    a problem with the input (data, config, file system): one ``error:`` line
     per problem
2    a usage error (typer/click's own message)
3    an internal error (a bug): one ``error:`` line naming a crash log that
     holds the traceback; ``forecast --debug CMD`` shows it inline instead
130  interrupted (Ctrl-C, SIGINT)
143  terminated (SIGTERM); output staging folders are removed on the way out
==== ==========================================================================

Warnings are printed when they occur, once per distinct message, one line each
(``warning: ...``). Control characters in any ``error:``/``warning:`` line are
escaped, so a province name holding a newline cannot forge an ``error:`` line.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import traceback
import unicodedata
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TextIO

from forecast.exceptions import DataValidationError, ForecastError, ForecastWarning, Terminated

EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPT, EXIT_TERM = 1, 2, 3, 130, 143

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Where a MemoryError or RecursionError counts as "the input file is hostile", not as a bug:
# frames of the readers of user files.
_READERS = (os.sep + os.path.join("forecast", "ingest.py"), os.sep + os.path.join("forecast", "config.py"),
            os.sep + os.path.join("forecast", "sources.py"), os.sep + os.path.join("forecast", "gazetteer.py"),
            os.sep + os.path.join("pandas", "io") + os.sep, os.sep + "pyarrow" + os.sep,
            os.sep + "tomllib" + os.sep, os.sep + "json" + os.sep)


def escape(text: Any) -> str:
    """``text`` as one printable line: control and line-separator characters become escapes.

    Letters of any script stay as they are (province names are often Cyrillic);
    only characters a terminal would act on are shown as ``\\n``, ``\\x1b``, ``\\u2028``.
    """
    out = []
    for ch in str(text):
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def error_lines(exc: ForecastError) -> list[str]:
    """One escaped line per problem of a :class:`ForecastError`."""
    if isinstance(exc, DataValidationError):
        # Built per problem: a newline inside a province name must not split one problem in two.
        prefix = f"{exc.source}: " if exc.source else ""
        return [escape(prefix + p.message()) for p in exc.problems] or [escape(type(exc).__name__)]
    return [escape(line) for line in exc.lines()] or [escape(type(exc).__name__)]


def _say(line: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    try:
        stream.write(line + "\n")
        stream.flush()
    except (OSError, ValueError):  # stderr closed or a broken pipe: nowhere left to tell
        pass


class WarningPrinter:
    """A ``warnings.showwarning`` replacement: each distinct warning once, one line, as it occurs.

    :class:`ForecastWarning` s are printed as ``warning: <message>`` unless
    ``quiet``. Warnings of libraries (RuntimeWarning from numpy, statsmodels'
    ConvergenceWarning, FutureWarning, ...) are printed once each, on one line,
    as ``warning: <Category>: <message>``, also under ``quiet`` (as they were
    before ``quiet`` existed); the Python filters still decide which reach here.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream
        self.seen: set[tuple[type, str]] = set()

    def __call__(self, message: Any, category: type[Warning], filename: str = "", lineno: int = 0,
                 file: Any = None, line: Any = None) -> None:
        text = str(message)
        key = (category, text)
        if key in self.seen:
            return
        self.seen.add(key)
        if issubclass(category, ForecastWarning):
            if not self.quiet:
                _say(f"warning: {escape(text)}", self.stream)
        else:
            first = text.strip().splitlines()[0] if text.strip() else ""
            _say(f"warning: {category.__name__}: {escape(first)}", self.stream)


@contextmanager
def printing_warnings(quiet: bool = False) -> Iterator[WarningPrinter]:
    """Show warnings through a :class:`WarningPrinter` for the duration of the block (then restore)."""
    printer = WarningPrinter(quiet)
    with warnings.catch_warnings():
        # Every ForecastWarning reaches the printer (which dedupes): Python's "default"
        # action would hide a repeat from the same line even when it concerns another province.
        warnings.simplefilter("always", ForecastWarning)
        warnings.showwarning = printer
        yield printer


def _from_reading(exc: BaseException) -> bool:
    """Whether the traceback of ``exc`` passes through code that reads a user's file."""
    tb = exc.__traceback__
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename for part in _READERS):
            return True
        tb = tb.tb_next
    return False


def input_error_line(exc: BaseException, source: Any = None) -> str | None:
    """The ``error:`` line for an exception that reading a hostile input file can raise, else ``None``."""
    where = f"{source}: " if source else ""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    if isinstance(exc, OSError):
        # unreadable file, no permission, full disk: input, not a bug
        name = exc.filename if exc.filename is not None else source
        return escape(f"{exc.strerror or exc}: {name}" if name else f"{exc.strerror or exc}")
    if isinstance(exc, UnicodeDecodeError):
        return escape(f"{where}cannot decode the file as text ({exc.encoding} at byte {exc.start}): "
                      f"save it as UTF-8 (or Latin-1) text, then rerun.")
    errors = sys.modules.get("pandas.errors")
    if errors is not None and isinstance(exc, (errors.ParserError, errors.EmptyDataError)):
        return escape(f"{where}cannot read the file as a table ({first or type(exc).__name__}): "
                      f"check that it is a comma-separated CSV (or Parquet) events file.")
    if (errors is not None and isinstance(exc, errors.OutOfBoundsDatetime)) and _from_reading(exc):
        return escape(f"{where}a date is outside the years pandas can hold (1677-2262) ({first}): "
                      f"correct the date, then rerun.")
    if isinstance(exc, (MemoryError, RecursionError)) and _from_reading(exc):
        return escape(f"{where}reading the file ran out of "
                      f"{'memory' if isinstance(exc, MemoryError) else 'nesting depth'} "
                      f"({type(exc).__name__}): check that it is the file you meant, or split it.")
    return None


def crash_log_path(now: float | None = None) -> Path:
    """``<tmp>/incident-forecast/crash-<UTC YYYYmmddTHHMMSSZ>-<pid>.log``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return Path(tempfile.gettempdir()) / "incident-forecast" / f"crash-{stamp}-{os.getpid()}.log"


def report_internal_error(exc: BaseException, debug: bool = False) -> int:
    """Print the one-line internal-error message (or, with ``debug``, the traceback); return exit code 3."""
    from forecast._version import __version__

    short = (str(exc).strip().splitlines() or [""])[0]
    short = short if len(short) <= 160 else short[:157] + "..."
    what = f"{type(exc).__name__}: {short}" if short else type(exc).__name__
    tb = "".join(traceback.format_exception(exc))
    if debug:
        _say(tb.rstrip("\n"))
        _say(f"error: internal error ({escape(what)})")
        return EXIT_INTERNAL
    path = crash_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"incident-forecast {__version__}\ncommand: {' '.join(map(repr, sys.argv))}\n"
                        f"python: {sys.version.split()[0]}\n\n{tb}", encoding="utf-8")
        _say(f"error: internal error ({escape(what)}); details in {path}")
    except OSError as err:
        _say(f"error: internal error ({escape(what)}); no crash log ({escape(err)}): rerun with "
             f"'forecast --debug ...' to see the details")
    return EXIT_INTERNAL


def _on_sigterm(signum: int, frame: Any) -> None:
    # Once: a second SIGTERM while staging folders are being removed must not cut that short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated("terminated (SIGTERM)")


def install_sigterm_handler() -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread, so ``finally`` blocks and cleanups run."""
    signal.signal(signal.SIGTERM, _on_sigterm)
