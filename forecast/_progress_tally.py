"""One progress count over work done in several parts (a backtest's tasks, a combination's
member backtests), each part reporting its own ``(done, total)`` from zero.

A part's reports are turned into changes of the shared count: a part that announces 12
units adds 12 to the total, and each unit it finishes adds one to the count done. So a
callback sees a single count that never goes back, whatever ran the parts, and a nested
backtest (the ``auto`` model's members) moves the same count as the models around it.

Work known from the start is reserved (``Tally(report, total)``, ``part(reserved=n)``), so the
total is right from the first report; a part that starts later grows it. Until
:meth:`Tally.finish` the count reported stays below the total: between two parts the
work is not over, and a display must not say it is.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")


class Tally:
    """The shared count behind :meth:`part` callbacks; ``report(done, total)`` sees every change.

    Parameters
    ----------
    report : Callable[[int, int], None]
        Called with the count done and the total known so far after every change.
    total : int
        Units known from the start (claimed by a part with ``part(reserved=...)``).
    """

    def __init__(self, report: Callable[[int, int], None], total: int = 0) -> None:
        self.report = report
        self.done = 0
        self.total = total
        self.finished = False
        self.last: tuple[int, int] | None = None

    def part(self, reserved: int = 0) -> "Part":
        """A ``(done, total)`` callback for one part of the work, counted into this tally;
        ``reserved`` of its units are already in the tally's total."""
        return Part(self, reserved)

    def finish(self) -> None:
        """Every part is done: report the full count."""
        self.finished = True
        self._add(0, 0)

    def _add(self, done: int, total: int) -> None:
        self.done += done
        self.total += total
        shown = (self.done if self.finished else min(self.done, max(self.total - 1, 0)), self.total)
        if shown != self.last:  # (the count held below the total is not reported twice)
            self.last = shown
            self.report(*shown)


class Part:
    """One part's ``(done, total)`` callback; :meth:`part` gives a sibling for the next part."""

    def __init__(self, tally: Tally, reserved: int = 0) -> None:
        self.tally = tally
        self.done = 0
        self.total = reserved

    def __call__(self, done: int, total: int) -> None:
        step, grow = done - self.done, total - self.total
        self.done, self.total = done, total
        self.tally._add(step, grow)

    def part(self) -> "Part":
        """Another part of the same tally (a nested run's second backtest reports from zero again)."""
        return Part(self.tally)

    def reserve(self, units: int) -> "Part":
        """Another part whose ``units`` are added to the total now, before it starts: work known
        ahead keeps the share done from falling back when it begins."""
        self.tally._add(0, units)
        return Part(self.tally, units)


def ticking(items: Iterable[T], tick: Callable[[], None] | None) -> Iterator[T]:
    """``items``, calling ``tick()`` after the loop body of each is done (a ``continue`` too)."""
    for item in items:
        yield item
        if tick is not None:
            tick()
