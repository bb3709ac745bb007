"""How a command shows the pipeline's progress: a bar on a terminal, plain lines elsewhere.

The pipeline reports ``progress(stage, done, total, detail=...)`` (see
:data:`forecast.pipeline.stages.Progress`); :class:`ProgressPrinter` turns those events into
what a person (or a CI log, or a scheduler's log file) reads:

- a line when a stage starts (``figures …``) and one per new ``detail``
  (``final fit: fitting auto on 40 series``);
- off a terminal, ``backtest: 12/48 (25 %), about 40 s left`` at most every ``every`` seconds,
  the time left from the rate of the stage so far, and a last line per stage with its
  elapsed time (``backtest: 48/48 in 1 min 12 s``);
- on a terminal, a tqdm bar (on stderr) for a stage of several steps, and its last line
  when the bar goes.

Everything goes to stdout; stderr is left to ``warning:`` and ``error:`` lines.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import typer


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``2 min 05 s``, ``1 h 02 min``: a duration as a log line shows it."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def time_left(elapsed: float, done: int, total: int) -> str:
    """``about 40 s left`` from the rate so far (done units in ``elapsed`` seconds); '' before any unit."""
    if done <= 0 or total <= done:
        return ""
    left = elapsed / done * (total - done)
    if left < 60:
        return f"about {max(1, int(round(left)))} s left"
    if left < 3600:
        return f"about {int(round(left / 60))} min left"
    return f"about {left / 3600:.1f} h left"


class ProgressPrinter:
    """Shows the pipeline's ``progress(stage, done, total, detail="")`` events.

    Parameters
    ----------
    tty : bool
        Writing to a terminal: bars for stages of several steps. Otherwise plain lines.
    every : float
        Seconds between two progress lines of one stage off a terminal.
    clock : callable
        Seconds now (a fake clock in tests).
    """

    def __init__(self, tty: bool, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.tty, self.every, self.clock = tty, every, clock
        self.stage: Optional[str] = None
        self.start = self.last = 0.0
        self.detail = ""
        self.finished = False
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int, detail: str = "") -> None:
        now = self.clock()
        if stage != self.stage:
            self._close()
            self.stage, self.start, self.last, self.detail, self.finished = stage, now, now, "", False
            if self.tty and total > 1:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=stage, leave=False)
            else:
                self._echo(f"{stage} …")
        if detail and detail != self.detail:
            self.detail = detail
            self._echo(f"{stage}: {detail}")
        if self.bar is not None:
            if self.bar.total != total:  # a backtest learns of a combination's member work as it starts
                self.bar.total = total
            self.bar.update(done - self.bar.n)
        elif not self.tty and 0 < done < total and now - self.last >= self.every:
            self.last = now
            left = time_left(now - self.start, done, total)
            self._echo(f"{stage}: {done}/{total} ({100 * done // total} %)" + (f", {left}" if left else ""))
        if total > 0 and done >= total and not self.finished:
            self.finished = True
            self._close()
            if not self.tty or total > 1:
                count = f"{done}/{total} " if total > 1 else "done "
                self._echo(f"{stage}: {count}in {duration(now - self.start)}")

    def _echo(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)  # above the bar, which stays at the bottom
        else:
            typer.echo(line)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_printer(quiet: bool, tty: bool) -> Optional[ProgressPrinter]:
    """The progress display of a command: none with ``--quiet``."""
    return None if quiet else ProgressPrinter(tty=tty)
