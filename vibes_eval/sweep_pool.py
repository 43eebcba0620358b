"""`run --devices`: one worker process per device, started, followed and accounted for here.

Plain spawned processes (CUDA starts cleanly in each), not a ProcessPoolExecutor. A pool
notices a killed worker only when its manager thread next wakes: CPython 3.11 wakes it for a
new task before spawning the worker that will run it, so a worker spawned late is not among
the processes it watches, and a worker killed by the out-of-memory killer went unnoticed until
every other worker had finished its whole shard. Then the pool terminates every other worker.
Here every worker reports on one queue, its checkpoints' lines and completions as they come and
its exit codes last; a worker that ends without saying them (killed, or crashed in C) is noticed
within POLL seconds and said once, naming its device, its signal and the checkpoints it did not
finish, and the other workers go on with theirs.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from queue import Empty

from vibes_eval.safety import say

__all__ = ["run_pool"]

POLL = 0.2  # seconds between looks at the workers while their queue is quiet


def _target(queue, show: bool, k: int, n: int, worker: Callable, device: str, ckpts: list[Path], outs: list[Path], args,
            threads: int | None, prefetch: bool, entry) -> None:
    """Worker k of n: `worker` (sweep._worker) on its checkpoints; its exit codes (or why it failed) are its last message."""
    relay = None
    if show:  # its checkpoints' lines, and anything written to its stderr, reach the parent's display
        from vibes_eval.run_display import LineRelay

        relay = LineRelay(queue)
        sys.stderr = relay.stream()
    try:
        result = ("codes", k, worker(device, ckpts, outs, args, threads, prefetch, entry, relay, first=k, step=n))
    except BaseException as e:  # the parent says it: the checkpoints not yet finished were not evaluated
        result = ("failed", k, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    if relay:
        relay.flush()  # a last line without its newline, before the codes
    queue.put(result)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}" + (", as the kernel's out-of-memory killer does" if name == "SIGKILL" else "")
    return f"it ended with exit code {exitcode} before reporting"


class _Books:
    """Who is done and with what: each checkpoint's exit code, counted once on the display."""

    def __init__(self, ckpts: list[Path], devices: list[str], n: int, display):
        self.ckpts, self.devices, self.n, self.display = ckpts, devices, n, display
        self.codes: list[int | None] = [None] * len(ckpts)
        self.ended: set[int] = set()

    def record(self, idx: int, code: int) -> None:
        if self.codes[idx] is None:
            self.codes[idx] = code
            if self.display is not None:
                self.display.advance(idx, code)

    def end(self, k: int, got: list[int], why: str | None = None) -> None:
        """Worker k is done: `got` are its checkpoints' codes in order; the rest were not run (3, or 2 after a usage error)."""
        self.ended.add(k)
        mine = list(range(k, len(self.ckpts), self.n))
        pad = 2 if got and got[-1] == 2 else 3
        for idx, code in zip(mine, got + [pad] * (len(mine) - len(got))):
            self.record(idx, code)
        if why:
            left = [self.ckpts[i].name for i in mine[len(got):]]
            say(f"{why}; its checkpoints not yet finished were not evaluated" + (f": {', '.join(left)}" if left else ""))

    def take(self, message) -> None:
        kind, *rest = message
        if kind == "line":
            self.display.line(rest[0])
        elif kind == "done":
            self.record(*rest)
        elif kind == "codes":
            self.end(rest[0], rest[1])
        elif kind == "failed":
            k = rest[0]
            self.end(k, [c for c in self.codes[k::self.n] if c is not None], f"worker on {self.devices[k]} failed: {rest[1]}")


def _follow(procs: dict, queue, books: _Books) -> None:
    """Until every worker has reported its codes, failed, or died: take their messages as they come."""
    while len(books.ended) < len(procs):
        try:
            books.take(queue.get(timeout=POLL))
            continue
        except Empty:
            pass
        gone = [k for k, p in procs.items() if k not in books.ended and p.exitcode is not None]
        while gone:  # what a worker sent before it ended is in the pipe already: read all of it first
            try:
                books.take(queue.get_nowait())
            except Empty:
                break
        for k in gone:
            if k not in books.ended:  # ended without its codes
                done = [c for c in books.codes[k::books.n] if c is not None]
                books.end(k, done, f"the worker on {books.devices[k]} died ({_death(procs[k].exitcode)})")


def run_pool(ckpts: list[Path], outs: list[Path], args, devices: list[str], prefetch: bool, entry, display,
             worker: Callable) -> list[int]:
    """Exit codes of every checkpoint, worker k of n taking checkpoints k, k+n, ... on devices[k].

    `worker(device, ckpts, outs, args, threads, prefetch, entry, relay, first=, step=)`: a
    module-level function (sweep._worker) that a spawned process imports by name.

    `display` (run_display.SweepDisplay or None): shows the workers' lines and counts their
    checkpoints as they finish. CPU workers split the CPU threads unless OMP_NUM_THREADS says
    otherwise. Ctrl-C (or any error here) terminates the workers.
    """
    import multiprocessing as mp

    n = min(len(devices), len(ckpts))
    cpu_workers = sum(1 for d in devices[:n] if d == "cpu")
    threads = None
    if cpu_workers and not os.environ.get("OMP_NUM_THREADS"):
        threads = max(1, (os.cpu_count() or 1) // cpu_workers)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    books = _Books(ckpts, devices, n, display)
    procs: dict[int, mp.process.BaseProcess] = {}
    try:
        for k in range(n):
            procs[k] = ctx.Process(target=_target, name=f"vibes-eval worker {k} ({devices[k]})",
                                   args=(queue, display is not None, k, n, worker, devices[k], ckpts[k::n], outs[k::n],
                                         args, threads if devices[k] == "cpu" else None, prefetch, entry))
            procs[k].start()
        _follow(procs, queue, books)
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        for p in procs.values():
            p.join()
        queue.close()
    return [3 if c is None else c for c in books.codes]
