"""`run --devices`: one worker process per device, started, followed and accounted for here.

Plain spawned processes (CUDA starts cleanly in each), not a ProcessPoolExecutor. A pool
notices a killed worker only when its manager thread next wakes: CPython 3.11 wakes it for a
new task before spawning the worker that will run it, so a worker spawned late is not among
the processes it watches, and a worker killed by the out-of-memory killer went unnoticed until
every other worker had finished its whole shard. Then the pool terminates every other worker.

Here each worker writes to its own one-way pipe (no lock shared between processes, which a
worker killed while sending would leave held): its checkpoints' lines and completions as they
come, its exit codes last. A worker that ends without its codes (killed, or crashed in C) is
end of file on its pipe at once, and is said once, naming its device, its signal and the
checkpoints it did not finish; the other workers go on with theirs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import vibes_eval.interrupt as interrupt
from vibes_eval.errors import EXIT_EVAL, EXIT_USAGE
from vibes_eval.safety import say

__all__ = ["run_pool"]

EXIT_WAIT = 10.0  # seconds a worker whose pipe has closed gets to finish exiting
STOP_WAIT = 0.8  # seconds stopped workers get, all together, to remove what they were writing (each ends itself after 1 s)


class _Sender:
    """A worker's end of its pipe: `put` from any of its threads (a library may warn from another)."""

    def __init__(self, conn):
        self.conn, self.lock = conn, threading.Lock()

    def put(self, message) -> None:
        with self.lock:
            self.conn.send(message)


def _target(conn, show: bool, k: int, n: int, worker: Callable, device: str, ckpts: list[Path], outs: list[Path], options,
            threads: int | None, prefetch: bool, entry) -> None:
    """Worker k of n: `worker` (sweep._worker) on its checkpoints; its exit codes (or why it failed) are its last message."""
    # the parent stops the sweep with SIGTERM: a half-written report is removed, as in the parent, and the
    # worker ends within a second even where a library swallowed the interrupt (a cold `import torch`)
    interrupt.install()
    sender = _Sender(conn)
    relay = None
    if show:  # its checkpoints' lines, and anything written to its stderr, reach the parent's display
        from vibes_eval.cli.display import LineRelay

        relay = LineRelay(sender)
        sys.stderr = relay.stream()
    try:
        result = ("codes", k, worker(device, ckpts, outs, options, threads, prefetch, entry, relay,
                                     report=lambda idx, code: sender.put(("done", idx, code)), first=k, step=n))
        interrupt.raise_if_stopped()  # a stop swallowed on the way: said as one, not as finished codes
    except BaseException as e:  # the parent says it: the checkpoints not yet finished were not evaluated
        result = ("failed", k, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    if relay:
        relay.flush()  # a last line without its newline, before the codes
    sender.put(result)  # the pipe stays open until the process ends: what it writes while exiting still reaches the parent
    for stream in (sys.stdout, sys.stderr):  # every report is written and closed: skip the second of torch's teardown
        stream.flush()
    os._exit(interrupt.exit_code() if interrupt.requested() is not None else 0)


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

    def finished(self, k: int) -> list[int]:
        """Worker k's checkpoints reported done so far, in order."""
        return [c for c in self.codes[k::self.n] if c is not None]

    def end(self, k: int, got: list[int], why: str | None = None) -> None:
        """Worker k is done: `got` are its checkpoints' codes in order; the rest were not run (3, or 2 after a usage error)."""
        self.ended.add(k)
        mine = list(range(k, len(self.ckpts), self.n))
        pad = EXIT_USAGE if got and got[-1] == EXIT_USAGE else EXIT_EVAL
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
            self.end(k, self.finished(k), f"worker on {self.devices[k]} failed: {rest[1]}")


def _follow(procs: dict, pipes: dict, books: _Books) -> None:
    """Until every worker's pipe has closed: take their messages as they come; a pipe closed before its codes is a death."""
    from multiprocessing.connection import wait

    while pipes:
        for conn in wait(list(pipes)):
            k = pipes[conn]
            try:
                books.take(conn.recv())
                continue
            except (EOFError, OSError):  # the worker's end is closed: it has exited, or was killed (mid-message too)
                pass
            conn.close()
            del pipes[conn]
            if k not in books.ended:  # ended without its codes
                procs[k].join(EXIT_WAIT)
                books.end(k, books.finished(k), f"the worker on {books.devices[k]} died ({_death(procs[k].exitcode)})")


def run_pool(ckpts: list[Path], outs: list[Path], options, devices: list[str], prefetch: bool, entry, display,
             worker: Callable) -> list[int]:
    """Exit codes of every checkpoint, worker k of n taking checkpoints k, k+n, ... on devices[k].

    `worker(device, ckpts, outs, options, threads, prefetch, entry, relay, report=, first=, step=)`:
    a module-level function (sweep._worker) that a spawned process imports by name.
    `display` (cli.display.SweepDisplay or None): shows the workers' lines and counts their
    checkpoints as they finish. CPU workers split the CPU threads unless OMP_NUM_THREADS says
    otherwise. Ctrl-C, SIGTERM (or any error here) stops the workers, each removing what it was
    writing.
    """
    import multiprocessing as mp

    n = min(len(devices), len(ckpts))
    cpu_workers = sum(1 for d in devices[:n] if d == "cpu")
    threads = None
    if cpu_workers and not os.environ.get("OMP_NUM_THREADS"):
        threads = max(1, (os.cpu_count() or 1) // cpu_workers)
    ctx = mp.get_context("spawn")
    books = _Books(ckpts, devices, n, display)
    procs: dict[int, mp.process.BaseProcess] = {}
    pipes: dict = {}
    forget = interrupt.at_hard_exit(lambda: _kill(procs.values(), outs))  # this process ended by its watchdog: theirs too
    try:
        for k in range(n):
            theirs_read, theirs_write = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_target, name=f"vibes-eval worker {k} ({devices[k]})",
                            args=(theirs_write, display is not None, k, n, worker, devices[k], ckpts[k::n], outs[k::n],
                                  options, threads if devices[k] == "cpu" else None, prefetch, entry))
            try:
                p.start()
            except BaseException:  # cannot start (an argument that does not pickle): said as itself
                theirs_read.close()
                raise
            finally:
                theirs_write.close()  # the worker holds the only write end: its exit is end of file here
            procs[k], pipes[theirs_read] = p, k
        _follow(procs, pipes, books)
    finally:
        _stop(procs.values(), outs)
        forget()
        for conn in pipes:
            conn.close()
    return [3 if c is None else c for c in books.codes]


def _stop(procs, outs: list[Path]) -> None:
    """Workers still running get SIGTERM (each removes the file it was writing), then SIGKILL after STOP_WAIT s in all."""
    import time

    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + STOP_WAIT
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    _kill(procs, outs)


def _kill(procs, outs: list[Path]) -> None:
    """SIGKILL the workers still alive, and remove any temporary report file a killed one left in the sweep's folders."""
    from vibes_eval.report.atomic import remove_temporaries

    killed = [p for p in procs if p.is_alive()]
    for p in killed:
        p.kill()
    for p in killed:
        p.join(1.0)
    if killed:
        for out in outs:
            if out.is_dir():
                remove_temporaries(out)
