"""Waits with a bound: a test waiting on a subprocess or a thread fails with a message, never hangs the suite.

pytest's faulthandler dumps the stacks of a test still running after 300 s (pyproject.toml); these
bounds are well under it, so a hang fails its own test, says what it waited for and shows the
child's stderr. Import with `from bounded import finish, joined, until, ...` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

import pytest

__all__ = ["finish", "joined", "output_until", "run", "until"]


def finish(proc: subprocess.Popen, seconds: float, what: str) -> tuple:
    """`proc.communicate()` within `seconds`; past it the process is killed and the test fails naming `what`."""
    try:
        return proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"{what}: still running after {seconds:g} s (killed); stderr ends: {str(err or '')[-2000:]}")


def run(argv: list, seconds: float, what: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`subprocess.run(argv, **kwargs)` within `seconds`; past it the test fails naming the command."""
    try:
        return subprocess.run(argv, timeout=seconds, **kwargs)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{what or ' '.join(map(str, argv))[:300]}: still running after {seconds:g} s (killed); "
                    f"stderr ends: {str(e.stderr or '')[-2000:]}")


def joined(thread: threading.Thread, seconds: float, what: str) -> None:
    """`thread.join(seconds)`, failing the test naming `what` when the thread is still running."""
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what}: thread {thread.name} still running after {seconds:g} s")


def until(condition: Callable[[], object], seconds: float, what: str, every: float = 0.02) -> None:
    """Poll `condition()` until it is true; past `seconds` the test fails naming `what`."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {seconds:g} s")
        time.sleep(every)


def output_until(proc: subprocess.Popen, marker: str, seconds: float, what: str, stream: str = "stdout") -> str:
    """What `proc` wrote to its `stream` pipe up to and including `marker`, read within `seconds`; else the test fails.

    Reads the pipe's file descriptor directly (select + os.read), so `finish(proc, ...)` reads the rest afterwards.
    """
    import os
    import select

    fd, seen, end = getattr(proc, stream).fileno(), b"", time.monotonic() + seconds
    while marker.encode() not in seen:
        left = end - time.monotonic()
        ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            proc.kill()
            proc.communicate(timeout=30)
            pytest.fail(f"{what}: {marker!r} not written within {seconds:g} s ({'ended' if ready else 'timed out'}); "
                        f"{stream} so far: {seen[-500:]!r}")
        seen += chunk
    return seen.decode(errors="replace")
