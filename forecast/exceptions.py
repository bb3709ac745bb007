"""Exceptions and warnings shared by every stage.

Every error a user can cause derives from :class:`ForecastError`; its ``str`` is
one readable line per problem, which the CLI prints as is (no traceback).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

MAX_ROWS_SHOWN = 10


class ForecastError(Exception):
    """Base class of errors caused by input (data, config, arguments)."""

    def lines(self) -> list[str]:
        """One readable line per problem."""
        return [line for line in str(self).splitlines() if line.strip()]


class ForecastWarning(UserWarning):
    """A problem that does not stop the run but must reach the user."""


@dataclass(frozen=True)
class Problem:
    """One failed check on input data.

    Parameters
    ----------
    column : the column the check concerns (or ``"<file>"`` for file-level problems).
    check : short description of what failed, e.g. ``"unparseable date"``.
    rows : 1-based row numbers as a spreadsheet shows them (header = row 1,
        so the first data row is row 2); all of them, only 10 are printed.
    provinces : provinces affected, if known.
    hint : what the user should do about it.
    """

    column: str
    check: str
    rows: Sequence[int] = field(default_factory=tuple)
    provinces: Sequence[str] = field(default_factory=tuple)
    hint: str = ""

    def message(self) -> str:
        parts = [f"column '{self.column}': {self.check}"]
        rows = list(self.rows)
        if rows:
            shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
            more = f" and {len(rows) - MAX_ROWS_SHOWN} more" if len(rows) > MAX_ROWS_SHOWN else ""
            parts.append(f"in {len(rows)} row{'s' if len(rows) != 1 else ''} ({shown}{more})")
        provs = sorted({str(p) for p in self.provinces if p is not None and str(p) != ""})
        if provs:
            shown_p = ", ".join(provs[:MAX_ROWS_SHOWN])
            more_p = f" and {len(provs) - MAX_ROWS_SHOWN} more" if len(provs) > MAX_ROWS_SHOWN else ""
            parts.append(f"provinces: {shown_p}{more_p}")
        msg = "; ".join(parts)
        if self.hint:
            msg += f". {self.hint}"
        # Names and values come from the user's file: a vertical tab or line
        # separator in them must not split the one line per problem.
        return msg if msg.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in msg)


class DataValidationError(ForecastError, ValueError):
    """Input data failed one or more checks; every failure is reported at once.

    Attributes
    ----------
    problems : list of :class:`Problem`, in the order they were found.
    source : name of the file (or frame) that was checked.
    """

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def __reduce__(self):
        # Rebuilt from its parts when it crosses a process boundary (parallel and Dask
        # backtests): the default would call __init__ with the rendered message only.
        return type(self), (self.problems, self.source)

    def _render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(prefix + p.message() for p in self.problems)


class ConfigError(ForecastError, ValueError):
    """A model spec, run config or argument is invalid."""


class OutputExistsError(ForecastError, FileExistsError):
    """An output would overwrite an earlier run; pass ``--force`` to allow it."""


class Terminated(BaseException):
    """The process received SIGTERM.

    Raised by the CLI's signal handler so that the stack unwinds (staging folders
    are removed, worker pools stopped) before the CLI exits with code 143. A
    BaseException, like KeyboardInterrupt: ``except Exception`` must not swallow it.
    """
