"""What `run` draws on stderr while it works: stage bars, and for several checkpoints an overall bar with an ETA.

- `StageBars`: one Rich bar per stage of one checkpoint (generation, likelihood rows, ...),
  appearing with the first tick. Alone it owns its display; given a shared `Progress` it adds
  its bars there and removes them when the checkpoint is done.
- `SweepDisplay`: one live display for `run A B C ...`: "checkpoints k/N" with the time spent
  and the time left (the mean time of the finished checkpoints times all of them, less the time
  spent, so it counts down while one runs; Rich's own estimate needs two samples in its
  window, a sweep's first minutes have one), the current checkpoint's loading bar and stage
  bars under it, and one line per finished checkpoint above it.
  Worker processes (`--devices`) do not draw: `LineRelay` sends their lines (and whatever
  else they write to stderr, such as a failed checkpoint's one-line reason) to the parent,
  which shows them here, in order.

On a non-terminal (CI logs) Rich draws nothing live: the lines are printed as they come and
the finished overall bar once at the end.
"""

from __future__ import annotations

import io
from contextlib import contextmanager, nullcontext

__all__ = ["LineRelay", "StageBars", "SweepDisplay"]


def _columns(eta: bool = False) -> tuple:
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn

    class EtaColumn(ProgressColumn):
        """`ETA h:mm:ss` from the mean time per finished unit; blank until one is finished (or without `per`)."""

        def render(self, task):
            from rich.text import Text

            per = task.fields.get("per")  # seconds per unit when the last one finished (SweepDisplay.advance)
            if task.total is None or not per or task.finished:
                return Text("")
            left = max(0.0, per * task.total - (task.elapsed or 0.0))  # counts down while the next one runs
            m, s = divmod(int(left + 0.5), 60)
            return Text(f"ETA {m // 60}:{m % 60:02d}:{s:02d}", style="progress.remaining")

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return cols + (EtaColumn(),) if eta else cols


class StageBars:
    """Progress callback `(stage, done, total)` for one checkpoint; `close()` when it is done."""

    def __init__(self, console, quiet: bool, progress=None):
        self.console, self.quiet = console, quiet
        self.shared = progress  # a SweepDisplay's Progress: add to it, never start or stop it
        self.bar = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from rich.progress import Progress

            self.bar = Progress(*_columns(), console=self.console, transient=True)
            self.bar.start()
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(f"  {stage}" if self.shared else stage, total=max(total, 1))
        self.bar.update(self.tasks[stage], completed=done, total=max(total, 1))

    def close(self) -> None:
        if self.shared is not None:
            for task in self.tasks.values():
                self.shared.remove_task(task)
            self.tasks.clear()
        elif self.bar is not None:
            self.bar.stop()
            self.bar = None


class SweepDisplay:
    """The live display of a sweep of `total` checkpoints on `console` (stderr); a context manager."""

    def __init__(self, total: int, console, get_time=None):
        from rich.progress import Progress

        self.console = console
        self.progress = Progress(*_columns(eta=True), console=console, get_time=get_time)  # get_time: a clock (tests)
        self.overall = self.progress.add_task("checkpoints", total=total, per=None)

    def __enter__(self) -> SweepDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def bars(self, quiet: bool) -> StageBars:
        """The stage bars of the checkpoint being scored, under the overall bar."""
        return StageBars(self.console, quiet, progress=self.progress)

    @contextmanager
    def loading(self, message: str):
        """An indeterminate bar while a checkpoint's weights load (one live display: no spinner of its own)."""
        task = self.progress.add_task(f"  {message}", total=None)
        try:
            yield
        finally:
            self.progress.remove_task(task)

    def line(self, text: str) -> None:
        """A line above the bars: a finished checkpoint's result, or what a worker wrote to its stderr."""
        from vibes_eval.safety import strip_control

        # a worker's stderr is anything its libraries print: no escape sequence reaches the terminal
        self.console.print(strip_control(text, newlines=False), markup=False, highlight=False, soft_wrap=True)

    def advance(self, *_) -> None:
        """One more checkpoint done (whatever its result); takes and ignores (index, exit code)."""
        self.progress.advance(self.overall)
        task = next(t for t in self.progress.tasks if t.id == self.overall)
        self.progress.update(self.overall, per=(task.elapsed or 0.0) / max(task.completed, 1))


class LineRelay:
    """The display of a worker process: no bars; each checkpoint's line goes to the parent through `queue`."""

    def __init__(self, queue):
        self.queue = queue

    def bars(self, quiet: bool) -> StageBars:
        return StageBars(None, True)

    def loading(self, message: str):
        return nullcontext()

    def line(self, text: str) -> None:
        self.queue.put(("line", text))

    def advance(self, index: int, code: int) -> None:
        self.queue.put(("done", index, code))

    def stream(self) -> io.TextIOBase:
        """A text stream whose complete lines go to the parent like a checkpoint's line (the worker's sys.stderr)."""
        relay = self

        class _Lines(io.TextIOBase):
            def __init__(self):
                self.pending = ""
                relay.unfinished = self  # flush() sends what is left without a newline

            def writable(self) -> bool:
                return True

            def write(self, text: str) -> int:
                *lines, self.pending = (self.pending + text).split("\n")
                for line in lines:
                    relay.line(line)
                return len(text)

        return _Lines()

    def flush(self) -> None:
        """Send a last line written without its newline (the worker's last messages follow it, in order)."""
        rest = getattr(self, "unfinished", None)
        if rest is not None and rest.pending:
            self.line(rest.pending)
            rest.pending = ""
