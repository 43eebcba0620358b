"""Ctrl-C and SIGTERM: a stop flag that outlives a swallowed KeyboardInterrupt, and an exit within about a second.

A KeyboardInterrupt is not always seen by the code it interrupts: `import torch` initialises
NumPy from C++ and clears whatever error that import raised, so a Ctrl-C landing in NumPy's
import (cold, a few hundred milliseconds of every first load) is dropped, the half-imported
modules then fail the load ("cannot load: ModuleNotFoundError ..."), and the command would judge
a healthy checkpoint as unloadable and go on. So the signal is recorded here as well as raised:

- `install()` (the `vibes-eval` process, each sweep worker): SIGINT and SIGTERM set the stop
  flag and raise KeyboardInterrupt / `errors.Terminated` where the main thread is; the first one
  also arms a watchdog that ends the process `GRACE` seconds later if it is still running
  (whatever the main thread is doing: a C call, a join, a swallowed interrupt), after the
  functions registered with `at_hard_exit` (temporary report files removed, worker processes
  killed), with exit 130 / 143. An inherited SIG_IGN for SIGINT (a background job of a
  non-interactive shell) is kept, as Python keeps it; SIGTERM is always handled.
- `raise_if_stopped()`: after every failed load and before judging or writing a checkpoint's
  report, so an interrupt is never a load error and nothing is judged after a stop was asked for.
- `wait(seconds)`: a sleep that ends with the interrupt (the watcher's poll).

Without `install()` (the library in a notebook or a test) the flag is never set and these are
no-ops beside Python's own KeyboardInterrupt. This module imports only `errors`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from vibes_eval.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated

__all__ = ["GRACE", "at_hard_exit", "exception", "exit_code", "install", "raise_if_stopped", "requested", "said", "settle",
           "wait"]

GRACE = 1.0
"""Seconds between the first signal and the watchdog's exit."""

_stop = threading.Event()
_state: dict = {"signum": None, "grace": None, "said": False}
_hard_exit: dict[int, Callable[[], None]] = {}
_lock = threading.RLock()  # a second signal can land inside the first one's handler (same thread)


def install(grace: float | None = GRACE) -> None:
    """Handle SIGINT (unless inherited ignored) and SIGTERM in this process; `grace=None`: no watchdog. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state["grace"] = grace
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def settle() -> None:
    """The command is over (its files written, its exit code known): from now on a signal is only recorded."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is _handler:
            signal.signal(signum, _record)


def _record(signum, frame) -> bool:
    """Remember the signal; True for the first one."""
    with _lock:
        first = _state["signum"] is None
        if first:
            _state["signum"] = signum
    _stop.set()
    return first


def _handler(signum, frame) -> None:
    if _record(signum, frame) and _state["grace"] is not None:
        threading.Thread(target=_watchdog, args=(_state["grace"],), name="vibes-stop-watchdog", daemon=True).start()
    raise _exception(signum)


def _exception(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exception() -> KeyboardInterrupt:
    """The exception for the stop asked for (Terminated after SIGTERM, else KeyboardInterrupt)."""
    return _exception(requested() or signal.SIGINT)


def requested() -> int | None:
    """The signal that asked this process to stop (SIGINT, SIGTERM), or None."""
    return _state["signum"] if _stop.is_set() else None


def exit_code() -> int:
    """130 after SIGINT, 143 after SIGTERM."""
    return EXIT_TERMINATED if requested() == signal.SIGTERM else EXIT_INTERRUPTED


def raise_if_stopped() -> None:
    """Raise the pending interrupt (KeyboardInterrupt or Terminated) when a stop was asked for; else nothing."""
    signum = requested()
    if signum is not None:
        raise _exception(signum)


def wait(seconds: float) -> None:
    """Sleep `seconds`, or raise the interrupt as soon as a stop is asked for."""
    if _stop.wait(max(0.0, seconds)):
        raise_if_stopped()


def at_hard_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Run `fn` (quick, raising nothing but OSError) if the watchdog ends the process; returns an unregister function."""
    key = id(fn)
    _hard_exit[key] = fn

    def forget() -> None:
        _hard_exit.pop(key, None)

    return forget


def said() -> None:
    """The command has said `vibes-eval: interrupted` itself: the watchdog does not say it again."""
    _state["said"] = True


def _watchdog(grace: float) -> None:
    time.sleep(grace)
    for fn in list(_hard_exit.values()):
        try:
            fn()
        except OSError as e:  # a file already gone, a process already reaped: say it, go on ending
            print(f"vibes-eval: while stopping: {e}", file=sys.stderr)
    try:
        if not _state["said"]:
            print(f"vibes-eval: {'terminated' if requested() == signal.SIGTERM else 'interrupted'}", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
    except (OSError, ValueError):  # a closed pipe: nothing left to deliver
        pass
    os._exit(exit_code())


def _reset() -> None:
    """Forget a stop (tests)."""
    _stop.clear()
    _state.update(signum=None, said=False)
