"""Progress of the long toy work (training stages, the zoo build): Rich bars with an ETA.

`Bars` is what the factory and the training loops report to: one overall bar for the whole
build (its ETA is the time left) and one bar per stage, never bare step lines. `Bars.quiet()`
reports nowhere (tests, library use); `Bars.rich()` draws on stderr (on a non-terminal, Rich
prints the finished bars once instead of redrawing them).
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["Bars"]


class Bars:
    """Overall and per-stage progress; every method is a no-op when quiet."""

    def __init__(self, progress=None):
        self._p = progress
        self._overall = None

    @classmethod
    def quiet(cls) -> Bars:
        return cls(None)

    @classmethod
    @contextmanager
    def rich(cls, console=None):
        """Bars drawn on `console` (default: stderr) while the block runs."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console or Console(stderr=True)) as progress:
            yield cls(progress)

    def start(self, description: str, total: float) -> None:
        """The overall bar: `total` units of work (training steps, variants written)."""
        if self._p is not None:
            self._overall = self._p.add_task(description, total=total, note="")

    def stage(self, name: str, total: int, weight: float = 1.0):
        """A bar for one stage of `total` steps; returns tick(done, note="") (it also advances the overall bar by `weight` per step)."""
        if self._p is None:
            return lambda done, note="": None
        task = self._p.add_task(f"  {name}", total=total, note="")
        last = [0]

        def tick(done: int, note: str = "") -> None:
            self._p.update(task, completed=done, note=note)
            if self._overall is not None:
                self._p.advance(self._overall, (done - last[0]) * weight)
            last[0] = done

        return tick

    def log(self, message: str) -> None:
        """A line above the bars (a stage's result)."""
        if self._p is not None:
            self._p.console.print(message, highlight=False)
