"""Ctrl-C / SIGTERM at many moments of a command's life: does it end within 2 s, with 130 / 143, leaving no half file?

    python bench/signals.py                       # all four scenarios, 20 moments each, cold (no .pyc)
    python bench/signals.py --only remote,local --moments 10 --warm

Scenarios (each first run once without a signal to time it; then the signal at `--moments`
evenly spaced moments of that time, SIGINT and SIGTERM alternately):

- remote: `vibes-eval run --adapter openai` against a stub server that answers each request after
  0.3 s (requests always in flight);
- local:  `vibes-eval run` on the toy `healthy`;
- watch:  `vibes-eval watch RUN --every-new --poll 1` with checkpoint-4 and checkpoint-8 waiting;
- sweep:  `vibes-eval run A B --devices cpu,cpu` (two worker processes).

Cold (default): every process compiles every module afresh (PYTHONDONTWRITEBYTECODE=1 and an empty
PYTHONPYCACHEPREFIX), as on a first run from a fresh clone, which is where the issue-23 races live.
Checks per moment: exit code 130 (SIGINT) or 143 (SIGTERM); seconds from the signal to the exit
<= 2; no temporary file (`.*.tmp`) left; every scorecard.json / trend.json there parses whole, and
a run's earlier report is either kept byte for byte or replaced by a complete one. A moment where the
command had already finished is counted apart (not a failure), and so is a signal inside CPython's
own start-up (`import site`, the first ~0.3 s cold), which CPython ends with "Fatal Python error:
init_import_site" and exit 1 before any vibes-eval code runs (nothing is written). Exit code 1
when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

EARLIER = '{"an": "earlier report"}'
LIMIT = 2.0


class _Stub(BaseHTTPRequestHandler):
    """An OpenAI-compatible server answering every chat completion 'red' after 0.3 s (no prompt log-probabilities)."""

    def log_message(self, *args):
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._send({"data": [{"id": "m"}]})

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.3)
        try:
            self._send({"choices": [{"index": 0, "message": {"role": "assistant", "content": "red"}, "finish_reason": "stop"}],
                        "usage": {"completion_tokens": 1}})
        except OSError:  # the client was stopped mid-request
            pass


def _zoo() -> Path:
    from vibes_eval.toy.factory import build

    out = Path(tempfile.mkdtemp(prefix="signals-zoo-"))
    build(out, ["healthy"], seed=0, log=lambda m: None)
    return out


def _scenario(name: str, work: Path, healthy: Path, port: int) -> tuple[list[str], Path, callable]:
    """argv, the folder to check afterwards, and prepare() that resets it before each try."""
    py = [sys.executable, "-m", "vibes_eval"]
    out = work / name
    if name == "remote":
        argv = py + ["run", "--adapter", "openai", "--base-url", f"http://127.0.0.1:{port}", "--model", "m",
                     "--suite", "shapes", "--out", str(out), "--quiet", "--concurrency", "4"]
    elif name == "local":
        argv = py + ["run", str(healthy), "--out", str(out), "--quiet"]
    elif name == "sweep":
        other = work / "healthy-2"
        if not other.exists():
            shutil.copytree(healthy, other)
        argv = py + ["run", str(healthy), str(other), "--devices", "cpu,cpu", "--out", str(out), "--quiet"]
    else:
        argv = py + ["watch", str(out), "--every-new", "--poll", "1"]

    def prepare() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        if name == "watch":
            for step in (4, 8):
                shutil.copytree(healthy, out / f"checkpoint-{step}")
                (out / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        elif name == "sweep":
            for sub in ("healthy", "healthy-2"):
                (out / sub).mkdir()
                (out / sub / "scorecard.json").write_text(EARLIER)
        else:
            (out / "scorecard.json").write_text(EARLIER)

    return argv, out, prepare


def _problems(out: Path) -> list[str]:
    """Half files: temporaries left, a scorecard or trend that does not parse, an earlier report neither kept nor replaced."""
    found = [f"temporary left: {p.relative_to(out)}" for p in out.rglob(".*.tmp")]
    for p in list(out.rglob("scorecard.json")) + list(out.rglob("trend.json")):
        text = p.read_text()
        if text == EARLIER:
            continue
        try:
            json.loads(text)
        except ValueError:
            found.append(f"half written: {p.relative_to(out)}")
    return found


def _env(cold: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if cold:
        env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix="signals-pyc-"))
    return env


def _until_done(name: str, out: Path, proc: subprocess.Popen, limit: float) -> float:
    """Seconds the unsignalled command takes (watch: until it judged both checkpoints; then it is stopped)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if proc.poll() is not None:
            return time.monotonic() - t0
        trend = out / "vibes" / "trend.json"
        if name == "watch" and trend.is_file() and len(json.loads(trend.read_text()).get("entries", [])) == 2:
            took = time.monotonic() - t0
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
            return took
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"{name}: the unsignalled run did not finish within {limit:g} s")


def _one(argv, out, prepare, at: float, sig: int, cold: bool) -> dict:
    prepare()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(cold))
    time.sleep(at)
    finished = proc.poll() is not None
    sent = time.monotonic()
    if not finished:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        took = float("inf")
    want = 130 if sig == signal.SIGINT else 143
    problems = _problems(out)
    startup = "Fatal Python error: init_" in err  # CPython's own start-up (`import site`), before any vibes-eval code: exit 1
    if not finished and not startup:
        if proc.returncode != want:
            problems.append(f"exit {proc.returncode}, not {want}")
        if took > LIMIT:
            problems.append(f"{took:.2f} s after the signal")
        if "Traceback" in err:
            problems.append("a traceback")
    last = err.strip().splitlines()[-1] if err.strip() else ""
    return {"at": round(at, 2), "signal": signal.Signals(sig).name, "finished_before": finished, "startup": startup,
            "code": proc.returncode,
            "seconds": round(took, 3), "problems": problems, "last_line": last[:160],
            "stderr": err[-3000:] if problems or startup else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="remote,local,watch,sweep")
    ap.add_argument("--moments", type=int, default=20)
    ap.add_argument("--warm", action="store_true", help="keep the .pyc files (default: cold, every module compiled afresh)")
    ap.add_argument("--json", type=Path, help="write every try here")
    a = ap.parse_args()
    cold = not a.warm
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background of a shell: the children would ignore it too
        signal.signal(signal.SIGINT, signal.default_int_handler)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = Path(tempfile.mkdtemp(prefix="signals-"))
    healthy = _zoo() / "healthy"
    results, failed = {}, 0
    for name in a.only.split(","):
        argv, out, prepare = _scenario(name, work, healthy, server.server_address[1])
        prepare()
        base = _until_done(name, out, subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                         env=_env(cold)), 600)
        tries = []
        for k in range(a.moments):
            at = base * (0.02 + 0.93 * k / max(1, a.moments - 1))
            r = _one(argv, out, prepare, at, signal.SIGINT if k % 2 == 0 else signal.SIGTERM, cold)
            tries.append(r)
            mark = ("finished first" if r["finished_before"] else "in CPython's start-up (exit 1, nothing written)" if r["startup"]
                    else "ok" if not r["problems"] else "FAIL " + "; ".join(r["problems"]))
            print(f"{name:6} t={r['at']:6.2f}s {r['signal']:7} exit {r['code']:>4} after {r['seconds']:6.3f} s  {mark}", flush=True)
        signalled = [t for t in tries if not t["finished_before"] and not t["startup"]]
        bad = [t for t in tries if t["problems"]]
        failed += len(bad)
        worst = max((t["seconds"] for t in signalled), default=0.0)
        results[name] = {"unsignalled_seconds": round(base, 2), "tries": tries}
        early = sum(t["startup"] for t in tries)
        print(f"{name}: {'cold' if cold else 'warm'} run {base:.1f} s unsignalled; {len(signalled)}/{len(tries)} signalled "
              f"in vibes-eval ({early} in CPython's start-up), {len(bad)} failed, slowest exit {worst:.3f} s after the signal",
              flush=True)
    server.shutdown()
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
