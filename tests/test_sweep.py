"""Sweeps: weights read ahead, one worker process per device, shards merged by `compare`.

The worker pool must give the very scorecards the sequential run gives (verdicts, answers,
signals); shards must cover every checkpoint exactly once; bad flags are usage errors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from bounded import finish
from helpers import SHAPES

from vibes_eval.adapters.weight_files import cached_digest
from vibes_eval.options import RunOptions
from vibes_eval.sweep.runner import Prefetcher, parse_devices, parse_shard, shard


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shards_cover_every_checkpoint_once(n):
    items = [f"c{k}" for k in range(7)]
    parts = [shard(items, *parse_shard(f"{i}/{n}")) for i in range(n)]
    assert sorted(x for p in parts for x in p) == sorted(items)
    assert parts[0][0] == "c0" and (n == 1 or parts[1][0] == "c1")


@pytest.mark.parametrize("bad", ["1", "2/2", "-1/2", "a/b", "0/0", "1/2/3"])
def test_bad_shard_is_a_usage_error(bad):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(bad)


def test_devices_are_parsed():
    assert parse_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices(None) is None
    with pytest.raises(ValueError, match="'gpu0' is not a device"):
        parse_devices("cuda:0,gpu0")


def test_prefetch_reads_and_hashes_the_weights(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    data = bytes(range(256)) * 40000  # ~10 MB: more than one read chunk
    (ckpt / "model.safetensors").write_bytes(data)
    (ckpt / "config.json").write_text("{}")
    with Prefetcher() as pf:
        pf.ahead(ckpt)
        assert pf.wait(60), "the read-ahead did not finish within 60 s"
    assert pf.read_bytes == len(data) + 2 and pf.errors == [] and pf.skipped == []  # config.json too, not hashed
    assert cached_digest(ckpt / "model.safetensors") == "sha256:" + hashlib.sha256(data).hexdigest()
    (ckpt / "model.safetensors").write_bytes(data[:-1])  # changed since: the digest is not reused
    assert cached_digest(ckpt / "model.safetensors") is None


def test_a_trainer_checkpoints_own_state_is_neither_read_ahead_nor_hashed(tmp_path):
    from vibes_eval.adapters.weight_files import hash_weights, weight_files

    ckpt = tmp_path / "checkpoint-500"  # what transformers' Trainer saves beside the weights
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"w" * 1000)
    for name in ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth", "rng_state_3.pth", "training_args.bin"):
        (ckpt / name).write_bytes(b"s" * 5000)
    (ckpt / "mm_projector.bin").write_bytes(b"p" * 10)  # the original LLaVA repo's projector: weights
    assert [f.name for f in weight_files(ckpt)] == ["mm_projector.bin", "model.safetensors"]
    (ckpt / "trainer_state.json").write_text("{}")  # small: read ahead with the config files
    with Prefetcher() as pf:
        pf.ahead(ckpt)
        assert pf.wait(60), "the read-ahead did not finish within 60 s"
    assert pf.read_bytes == 1012
    assert sorted(hash_weights(ckpt)) == ["mm_projector.bin", "model.safetensors"]


def test_prefetch_leaves_a_checkpoint_too_big_for_memory_alone(tmp_path, monkeypatch):
    import vibes_eval.sweep.runner as sweep

    ckpt = tmp_path / "big"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(sweep, "_available_memory", lambda: 4096)
    with Prefetcher() as pf:
        pf.ahead(ckpt)
        assert pf.wait(60), "the read-ahead did not finish within 60 s"
    assert pf.read_bytes == 0 and "memory available" in pf.skipped[0]


# --- the command ---------------------------------------------------------------------------------------


def _cards(out: Path, names: list[str]) -> dict[str, dict]:
    return {n: json.loads((out / n / "scorecard.json").read_text()) for n in names}


def _essence(sc: dict) -> dict:
    """What must not depend on how the sweep ran: verdict, answers and every signal (no timings or dates)."""
    return {
        "verdict": sc["verdict"],
        "prompts": [{k: p[k] for k in ("id", "answer", "status", "signals", "variants")} for p in sc["prompts"]],
        "signals": sc["signals"],
        "weights": sc["fingerprint"]["weights"],
    }


def _one_line_each_and_the_overall_bar(err: str, ckpts, out) -> None:
    """stderr of a sweep on a non-terminal: each checkpoint's result once, on one line, and the finished overall bar."""
    lines = err.splitlines()
    for ckpt, said in zip(ckpts, ["pass", "fail image_blind"]):
        want = f"{ckpt}: {said} -> {out / ckpt.name / 'scorecard.html'}"
        assert lines.count(want) == 1, (want, err)
    assert any(line.startswith("checkpoints") and "2/2" in line for line in lines), err


def _wait_for(path, seconds=120.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.05)


def _dies_on_c(ckpt, options, out, display=None, *, bars=True):
    """A worker entry: 'c' kills its process as the out-of-memory killer would (with a display, once
    the parent has counted a and b); the others pass, 'd' only after c is dead. No race: each step
    waits for the parent's own record of the one before (the markers _MarkingDisplay writes)."""
    import os
    import signal

    ckpt = Path(ckpt)
    if ckpt.name == "c":
        if display is not None:
            _wait_for(ckpt.parent / "counted-0")
            _wait_for(ckpt.parent / "counted-1")
        (ckpt.parent / "c-dies").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if ckpt.name == "d":
        _wait_for(ckpt.parent / "c-dies")
    if display is not None:
        display.line(f"{ckpt.name}: pass")
    return 0


@pytest.mark.parametrize("shown", [True, False], ids=["display", "quiet"])
def test_a_killed_worker_keeps_its_results_and_the_others_go_on(tmp_path, capsys, shown):
    import io

    from rich.console import Console

    from vibes_eval.cli.display import SweepDisplay
    from vibes_eval.sweep.runner import run_sweep

    class _MarkingDisplay(SweepDisplay):
        def advance(self, index: int, code: int) -> None:
            super().advance(index, code)
            (tmp_path / f"counted-{index}").touch()

    ckpts = [tmp_path / n for n in "abcde"]  # worker 0: a, c, e; worker 1: b, d
    screen = io.StringIO()
    with _MarkingDisplay(5, Console(file=screen, width=200), get_time=lambda: 0.0) as display:
        codes = run_sweep(ckpts, [tmp_path / f"out-{n}" for n in "abcde"], RunOptions(prefetch=False), one=None,
                          devices=["cpu", "cpu"], entry=_dies_on_c, display=display if shown else None)
    assert codes == [0, 0, 3, 0, 3]  # a and b before c's worker was killed; d after it, on the other worker; e never ran
    err = capsys.readouterr().err
    assert err.count("died") == 1, err
    assert ("vibes-eval: the worker on cpu died (killed by SIGKILL, as the kernel's out-of-memory killer does); "
            "its checkpoints not yet finished were not evaluated: c, e\n") in err
    if shown:
        lines = screen.getvalue().splitlines()
        assert [lines.count(f"{n}: pass") for n in "abcde"] == [1, 1, 0, 1, 0]
        assert any(line.startswith("checkpoints") and "5/5" in line for line in lines)  # the bar counts the lost ones too


def _floods_then_dies(ckpt, options, out, display=None, *, bars=True):
    """'a' floods its stderr (relayed to the parent) and is killed mid-flood; the others write to
    theirs only after that (through a shared queue, a lock the dead worker held would stop them)."""
    import os
    import signal
    import sys
    import threading
    import time

    ckpt = Path(ckpt)
    if ckpt.name == "a":
        def kill():
            time.sleep(0.3)
            (ckpt.parent / "a-dies").touch()
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=kill, daemon=True).start()
        while True:
            sys.stderr.write("x" * 100 + "\n")
    _wait_for(ckpt.parent / "a-dies")
    time.sleep(0.2)
    for i in range(5):
        sys.stderr.write(f"{ckpt.name} line {i}\n")
    return 0


def test_a_worker_killed_while_it_sends_neither_hangs_the_sweep_nor_stops_the_others(tmp_path, capsys):
    import io
    import threading

    from rich.console import Console

    from vibes_eval.cli.display import SweepDisplay
    from vibes_eval.sweep.runner import run_sweep

    ckpts = [tmp_path / n for n in "abcd"]  # worker 0: a, c; worker 1: b, d
    got = {}
    with SweepDisplay(4, Console(file=io.StringIO(), width=200), get_time=lambda: 0.0) as display:
        sweep = threading.Thread(target=lambda: got.setdefault("codes", run_sweep(
            ckpts, [tmp_path / f"out-{n}" for n in "abcd"], RunOptions(prefetch=False), one=None, devices=["cpu", "cpu"],
            entry=_floods_then_dies, display=display)), daemon=True)
        sweep.start()
        sweep.join(60)
    assert not sweep.is_alive(), "the sweep hung on a worker killed while sending"
    assert got["codes"] == [3, 0, 3, 0]
    assert capsys.readouterr().err.count("died") == 1


def test_worker_lines_are_stripped_and_a_last_unfinished_line_is_sent():
    import io
    import queue

    from rich.console import Console

    from vibes_eval.cli.display import LineRelay, SweepDisplay

    q = queue.Queue()
    relay = LineRelay(q)
    err = relay.stream()
    err.write("warn: \x1b]0;pwned\x07 title\nno newline at the end")
    relay.flush()
    got = []
    while not q.empty():
        got.append(q.get())
    assert got == [("line", "warn: \x1b]0;pwned\x07 title"), ("line", "no newline at the end")]
    screen = io.StringIO()
    SweepDisplay(1, Console(file=screen, width=200)).line(got[0][1])
    assert "\x1b" not in screen.getvalue() and "\x07" not in screen.getvalue() and "title" in screen.getvalue()


def test_the_sweep_eta_counts_down_from_the_mean_time_per_checkpoint():
    import io

    from rich.console import Console

    from vibes_eval.cli.display import SweepDisplay

    now = [0.0]
    display = SweepDisplay(3, Console(file=io.StringIO()), get_time=lambda: now[0])
    task = display.progress.tasks[0]
    eta = display.progress.columns[-1]
    assert eta.render(task).plain == ""  # nothing finished: no estimate
    now[0] = 10.0
    display.advance(0, 0)
    now[0] = 12.0
    assert eta.render(task).plain == "ETA 0:00:18"  # 10 s each, 3 in all, 12 s spent
    now[0] = 20.0
    display.advance(1, 1)
    now[0] = 21.0
    assert eta.render(task).plain == "ETA 0:00:09"
    display.advance(2, 0)
    assert eta.render(task).plain == "" and task.finished


@pytest.fixture(scope="module")
def two_toys(zoo_dir):
    return [zoo_dir / "healthy", zoo_dir / "image-blind"]


def test_two_cpu_workers_give_the_sequential_scorecards(two_toys, tmp_path, capsys):
    from vibes_eval.cli.main import main

    seq, pool = tmp_path / "seq", tmp_path / "pool"
    argv = ["run", *map(str, two_toys), "--suite", str(SHAPES)]
    assert main([*argv, "--out", str(seq), "--no-prefetch"]) == 1  # image-blind fails the gate
    _one_line_each_and_the_overall_bar(capsys.readouterr().err, two_toys, seq)
    assert main([*argv, "--out", str(pool), "--devices", "cpu,cpu"]) == 1
    _one_line_each_and_the_overall_bar(capsys.readouterr().err, two_toys, pool)  # the workers' lines, shown by the parent
    names = [c.name for c in two_toys]
    a, b = _cards(seq, names), _cards(pool, names)
    for n in names:
        assert _essence(a[n]) == _essence(b[n]), n
    assert b["image-blind"]["verdict"]["diagnoses"] == ["image_blind"]
    assert (pool / "compare.html").is_file()


def test_a_workers_failed_checkpoint_is_said_by_the_parent_in_one_line(zoo_dir, tmp_path, capsys):
    import shutil

    from vibes_eval.cli.main import main

    bad = tmp_path / "truncated"
    shutil.copytree(zoo_dir / "healthy", bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    out = tmp_path / "out"
    assert main(["run", str(zoo_dir / "healthy"), str(bad), "--suite", str(SHAPES), "--out", str(out), "--devices", "cpu,cpu"]) == 3
    lines = capsys.readouterr().err.splitlines()  # the parent's stderr only: the workers' reach it through the relay
    assert len([x for x in lines if f"{weights}: cannot read weights" in x]) == 1, lines
    assert lines.count(f"{zoo_dir / 'healthy'}: pass -> {out / 'healthy' / 'scorecard.html'}") == 1, lines
    assert any(x.startswith("checkpoints") and "2/2" in x for x in lines), lines
    assert (out / "truncated" / "scorecard.json").is_file()  # the partial scorecard that says why


def test_a_sweep_holds_one_model_at_a_time(two_toys, tmp_path, monkeypatch):
    import gc
    import weakref

    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.cli.main import main

    models: list[weakref.ref] = []
    alive_at_open: list[int] = []
    real_init = HFAdapter.__init__

    def init(self, *a, **k):
        alive_at_open.append(sum(r() is not None for r in models))  # earlier checkpoints' models still in memory
        real_init(self, *a, **k)
        models.append(weakref.ref(self.model))

    monkeypatch.setattr(HFAdapter, "__init__", init)
    gc.disable()  # the collector may or may not run between checkpoints by chance; a sweep must not rely on it
    try:
        assert main(["run", *map(str, two_toys), "--suite", str(SHAPES), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    finally:
        gc.enable()
    assert alive_at_open == [0, 0] and len(models) == 2
    assert gc.get_freeze_count() == 0  # the sweep froze the collector's old objects and gave them back


def test_evaluate_frees_the_model_it_opened_by_reference_counting(zoo_dir, monkeypatch):
    import gc
    import weakref

    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.api import evaluate

    models: list[weakref.ref] = []
    real_init = HFAdapter.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        models.append(weakref.ref(self.model))

    monkeypatch.setattr(HFAdapter, "__init__", init)
    gc.disable()  # no collector: only reference counting may free it
    try:
        assert evaluate(zoo_dir / "healthy", SHAPES).verdict.status.value == "pass"
        assert len(models) == 1 and models[0]() is None  # closed by evaluate: no cycle keeps it
    finally:
        gc.enable()


def test_shards_write_their_folders_and_compare_merges_them(two_toys, tmp_path, capsys):
    from vibes_eval.cli.main import main

    out = tmp_path / "sweep"
    base = ["run", *map(str, two_toys), "--suite", str(SHAPES), "--out", str(out)]
    assert main([*base, "--shard", "0/2", "--quiet"]) == 0  # healthy alone: passes
    assert sorted(p.name for p in out.iterdir()) == ["healthy"]
    assert main([*base, "--shard", "1/2"]) == 1
    assert "merge every shard's reports with `vibes-eval compare" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["healthy", "image-blind"] and not (out / "compare.html").exists()
    assert main(["compare", *map(str, sorted(out.iterdir())), "--html", str(out / "compare.html")]) == 1
    assert "image-blind" in (out / "compare.html").read_text()
    assert main([*base, "--shard", "0/3", "--quiet"]) == 0 and main([*base, "--shard", "2/3"]) == 0  # shard 2 is empty
    assert "no checkpoint falls in this shard" in capsys.readouterr().err


@pytest.mark.parametrize("extra, words", [
    (["--shard", "0/2"], "--shard: needs --out"),
    (["--devices", "cpu", "--device", "cpu"], "--devices and --device"),
    (["--devices", "tpu"], "'tpu' is not a device"),
])
def test_sweep_flags_fail_in_one_line(extra, words, tmp_path, capsys):
    from vibes_eval.cli.main import main

    assert main(["run", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_shards_name_same_named_checkpoints_as_the_whole_run_would(tmp_path):
    from vibes_eval.cli.run import _report_names
    from vibes_eval.sweep.runner import plan_sweep

    ckpts = [tmp_path / "a" / "step-100", tmp_path / "b" / "step-100", tmp_path / "c" / "step-200"]
    whole = _report_names(ckpts)
    assert whole == ["step-100", "step-100-2", "step-200"]
    for i in range(2):
        options = RunOptions(shard=f"{i}/2", out=tmp_path / "out")
        plan = plan_sweep(ckpts, options, options.out, whole)
        assert plan.outs == [options.out / n for n in whole[i::2]] and plan.sharded and not plan.compare


def test_a_worker_that_fails_leaves_its_checkpoints_unevaluated(tmp_path, capsys):
    from vibes_eval.sweep.runner import run_sweep

    ckpts, outs = [tmp_path / "a", tmp_path / "b"], [tmp_path / "out-a", tmp_path / "out-b"]
    # the entry raises inside each worker before anything is loaded
    codes = run_sweep(ckpts, outs, RunOptions(prefetch=False), one=None, devices=["cpu", "cpu"], entry=_raises)
    assert codes == [3, 3]
    assert capsys.readouterr().err.count("vibes-eval: worker on cpu failed: RuntimeError") == 2


def _raises(ckpt, options, out, display=None, *, bars=True):
    """A worker entry with a bug of its own: the sweep says which worker failed and how."""
    raise RuntimeError("an entry with a bug")


def _writes_slowly(ckpt, options, out, display=None, *, bars=True):
    """A worker entry in the middle of writing a report when the sweep is stopped: it must remove its file."""
    import time

    part = Path(out).with_name(f".{Path(ckpt).name}.partial")
    part.write_text("half a report")
    try:
        time.sleep(60)
    finally:
        part.unlink()
    return 0


def test_stopping_a_sweep_stops_its_workers_and_they_remove_what_they_were_writing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import signal, sys\n"
        "from pathlib import Path\n"
        "from test_sweep import _writes_slowly\n"
        "from vibes_eval.errors import Terminated\n"
        "from vibes_eval.options import RunOptions\n"
        "from vibes_eval.sweep.runner import run_sweep\n"
        "def stop(*_): raise Terminated()\n"
        "if __name__ == '__main__':\n"
        "    signal.signal(signal.SIGTERM, stop)  # as the vibes-eval command does\n"
        "    root = Path(sys.argv[1])\n"
        "    try:\n"
        "        run_sweep([root / 'a', root / 'b'], [root / 'out-a', root / 'out-b'], RunOptions(prefetch=False), one=None,\n"
        "                  devices=['cpu', 'cpu'], entry=_writes_slowly)\n"
        "    except KeyboardInterrupt as e:\n"
        "        print('stopped:', type(e).__name__)\n"
    )
    (tmp_path / "stop_me.py").write_text(script)
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "stop_me.py"), str(tmp_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parts = [tmp_path / ".a.partial", tmp_path / ".b.partial"]
    end = time.monotonic() + 120
    while not all(p.exists() for p in parts) and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)
    if not all(p.exists() for p in parts):
        proc.kill()
        pytest.fail(f"the workers did not start writing within 120 s: {finish(proc, 30, 'the killed sweep')}")
    proc.send_signal(signal.SIGTERM)
    out, err = finish(proc, 60, "a sweep after SIGTERM")
    assert "stopped: Terminated" in out, err
    assert not any(p.exists() for p in parts)  # each worker got SIGTERM and cleaned up, not killed outright


def test_a_worker_that_cannot_start_is_said_as_itself(tmp_path):
    import pickle

    from vibes_eval.sweep.runner import run_sweep

    with pytest.raises((pickle.PicklingError, AttributeError, TypeError), match="pickle"):
        run_sweep([tmp_path / "a", tmp_path / "b"], [tmp_path / "oa", tmp_path / "ob"], RunOptions(prefetch=False),
                  one=None, devices=["cpu", "cpu"], entry=lambda *a, **k: 0)  # a lambda does not pickle
