"""Ctrl-C and SIGTERM are interrupts wherever they land, and end a command within about a second (issue 23)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from bounded import finish, output_until

import vibes_eval.interrupt as interrupt
from vibes_eval.errors import Terminated

# a child `vibes-eval` that sends itself a signal the moment the import system looks for MODULE: the cold
# start's race made exact (torch imports NumPy from C++ and clears any error raised in that import)
SIGNAL_DURING_IMPORT = """
import importlib.abc, os, signal, sys
class SignalDuringImport(importlib.abc.MetaPathFinder):
    fired = False
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} and not SignalDuringImport.fired:
            SignalDuringImport.fired = True
            print("signal sent while importing", name, file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.{sig})
        return None
sys.meta_path.insert(0, SignalDuringImport())
sys.argv = ["vibes-eval", *sys.argv[1:]]
from vibes_eval.cli.main import console_main
console_main()
"""


@pytest.mark.parametrize(("module", "sig", "code"), [
    ("numpy._typing", "SIGINT", 130),  # swallowed by torch's C++: only the stop flag knows
    ("numpy._typing", "SIGTERM", 143),
    ("transformers.models.llava.modeling_llava", "SIGINT", 130),  # the import the watcher was in
])
def test_a_signal_inside_the_first_import_is_an_interrupt_never_a_load_error(zoo_dir, tmp_path, module, sig, code):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scorecard.json").write_text('{"an": "earlier report"}')
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_DURING_IMPORT.format(module=module, sig=sig), "run",
                             str(zoo_dir / "healthy"), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    _, err = finish(proc, 120, f"vibes-eval run with {sig} during the import of {module}")
    assert f"signal sent while importing {module}" in err  # the race happened
    assert proc.returncode == code, err
    assert "cannot load" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == f"vibes-eval: {'interrupted' if sig == 'SIGINT' else 'terminated'}"
    assert [p.name for p in out.iterdir()] == ["scorecard.json"]  # no load_error scorecard, nothing half-written
    assert (out / "scorecard.json").read_text() == '{"an": "earlier report"}'
    assert time.monotonic() - t0 < 110


def test_the_stop_flag_outlives_a_swallowed_interrupt_and_wait_ends_with_it():
    interrupt._reset()
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        interrupt.install(grace=None)  # no watchdog in the test process
        with pytest.raises(Terminated):  # raised, then dropped here as torch's NumPy import drops it
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert interrupt.requested() == signal.SIGTERM and interrupt.exit_code() == 143
        with pytest.raises(Terminated):
            interrupt.raise_if_stopped()
        t0 = time.monotonic()
        with pytest.raises(Terminated):
            interrupt.wait(30)
        assert time.monotonic() - t0 < 1
    finally:
        interrupt._reset()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    interrupt.raise_if_stopped()  # reset: nothing pending
    assert interrupt.requested() is None


STUCK = """
import sys, time
import vibes_eval.interrupt as interrupt
from vibes_eval.report import atomic
interrupt.install()
tmp = {tmp!r}
atomic._in_flight.add(tmp)  # a report being written when the process stops
open(tmp, "w").write("half")
said = False
while True:  # a main thread that swallows every interrupt, as a C call that never returns would hold it
    try:
        if not said:
            said = True
            print("stuck", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        pass
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_process_that_swallows_the_interrupt_still_ends_within_about_a_second(tmp_path, sig, code):
    tmp = tmp_path / ".scorecard.json.abcd1234.tmp"
    proc = subprocess.Popen([sys.executable, "-c", STUCK.format(tmp=str(tmp))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "stuck\n"
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = finish(proc, 30, "a process whose main thread swallows the interrupt")
    took = time.monotonic() - t0
    assert proc.returncode == code and took < 2.0, (took, err)
    assert err.strip().splitlines()[-1] == f"vibes-eval: {'interrupted' if sig == signal.SIGINT else 'terminated'}"
    assert not tmp.exists()  # the temporary file being written was removed first


def test_a_remote_request_cancelled_while_it_registers_is_not_sent():
    from vibes_eval.adapters.openai.exchange import Exchange

    class CancelWhileRegistering:  # the adapter's cancel() runs while this request joins the live set
        def __enter__(self):
            Adapter._cancel.set()

        def __exit__(self, *exc):
            return False

    class Adapter:
        _host, _port, _https, timeout = "127.0.0.1", 9, False, 30.0
        _cancel = threading.Event()
        _live: set = set()
        _live_lock = CancelWhileRegistering()

    with Exchange(Adapter, "http://127.0.0.1:9/v1/x") as ex, pytest.raises(OSError, match="cancelled"):
        ex.send("GET", "/v1/x", None, {})  # sent anyway before the fix: refused by port 9, or held for --timeout


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_serve_ends_with_the_documented_code_within_about_a_second(zoo_dir, sig, code):
    proc = subprocess.Popen([sys.executable, "-m", "vibes_eval", "serve", str(zoo_dir / "healthy"), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output_until(proc, "(Ctrl-C to stop)", 120, "vibes-eval serve starting", stream="stderr")
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = finish(proc, 30, f"vibes-eval serve after {signal.Signals(sig).name}")
    took = time.monotonic() - t0
    assert proc.returncode == code and took < 3, (took, err)
    assert "Traceback" not in err
