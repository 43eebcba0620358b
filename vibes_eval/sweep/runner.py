"""Sweeps of many checkpoints: weights read ahead, one worker process per device, shards for job arrays.

- `Prefetcher`: while one checkpoint is scored (and, for the first, while torch and
  transformers are imported), a background thread reads the next one's files into host memory
  (the page cache, in 8 MiB chunks through one reused buffer): its config, tokenizer and
  processor files first, then its weight files, hashing these on the way, so its load reads
  memory instead of the disk and its fingerprint's hashes are already known. A checkpoint
  bigger than half the memory available is not read ahead (it would evict the one being
  scored).
- `run_sweep`: the checkpoints one after another with the next one read ahead, or, with
  several devices, one worker process per device (spawned, so CUDA starts cleanly in each),
  each taking every n-th checkpoint and running the same loop on its own device. Reports go
  to the same per-checkpoint folders either way; the caller writes the comparison.
- `parse_shard` / `parse_devices`: `--shard i/n` (every n-th checkpoint from the i-th, for a
  Slurm array task or any job runner) and `--devices cuda:0,cuda:1 | auto | cpu,cpu`.
"""

from __future__ import annotations

import gc
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vibes_eval.adapters.weight_files import HASH_FULL_LIMIT, file_key, remember_digest, trainer_state, weight_files
from vibes_eval.errors import EXIT_USAGE
from vibes_eval.options import RunOptions

__all__ = ["Prefetcher", "SweepPlan", "add_sweep_arguments", "parse_devices", "parse_shard", "plan_sweep", "run_sweep", "shard",
           "side_files"]

CHUNK = 8 << 20
SIDE_LIMIT = 64 << 20  # a config, tokenizer or template file above this is not read ahead


def side_files(ckpt: Path, weights: list[Path]) -> list[Path]:
    """The folder's other files the loader opens (config, tokenizer, processor, template), smallest first.

    Read ahead before the weights: on a slow or throttled disk, a cold tokenizer.json read while
    the next checkpoint's weights are being read waits behind them.
    """
    skip = set(weights)
    files = [p for p in Path(ckpt).iterdir() if p.is_file() and p not in skip and not trainer_state(p.name)]
    return sorted((p for p in files if p.stat().st_size <= SIDE_LIMIT), key=lambda p: p.stat().st_size)


def _available_memory() -> int | None:
    """MemAvailable in bytes (Linux), else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class Prefetcher:
    """Reads checkpoints' weight files ahead in one background thread; `ahead(ckpt)` queues one.

    Use as a context manager: leaving it stops the reading (between chunks) and joins the thread.
    `read_bytes` and `errors` say what it did; a file it cannot read is left to the loader,
    which names it.
    """

    def __init__(self):
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read_bytes = 0
        self.skipped: list[str] = []
        self.errors: list[str] = []

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current read-ahead is done, at most `timeout` seconds; whether it is (tests, the benchmark)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def ahead(self, ckpt: Path | None) -> None:
        """Start reading `ckpt`'s weights (after any read still running); None does nothing."""
        if ckpt is None or self._stop.is_set():
            return
        previous = self._thread
        self._thread = threading.Thread(target=self._read, args=(Path(ckpt), previous), name="vibes-prefetch", daemon=True)
        self._thread.start()

    def _read(self, ckpt: Path, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()
        try:
            files = weight_files(ckpt)  # the weights the loader reads, not the Trainer's optimizer.pt
            total = sum(f.stat().st_size for f in files)
            side = side_files(ckpt, files)
        except OSError as e:
            self.errors.append(f"{ckpt}: {e}")
            return
        room = _available_memory()
        if room is not None and total > room // 2:
            self.skipped.append(f"{ckpt}: {total >> 20} MiB of weights, {room >> 20} MiB of memory available")
            return
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        for f in side + files:
            hashed = f not in side and total <= HASH_FULL_LIMIT  # above the limit: the fingerprint samples, not hashed ahead
            h = hashlib.sha256() if hashed else None
            try:
                key = file_key(f)
                with open(f, "rb", buffering=0) as fh:
                    while not self._stop.is_set():
                        n = fh.readinto(buf)
                        if not n:
                            break
                        self.read_bytes += n
                        if h is not None:
                            h.update(view[:n])
            except OSError as e:
                self.errors.append(f"{f}: {e.strerror or e}")
                continue
            if self._stop.is_set():
                return
            if h is not None:
                remember_digest(key, "sha256:" + h.hexdigest())


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`"i/n"` -> (i, n) with 0 <= i < n; ValueError with the flag's name otherwise."""
    if text is None:
        return None
    parts = str(text).split("/")
    try:
        i, n = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shard: expected I/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard: need 0 <= I < N, got {text!r}")
    return i, n


def shard(items: Sequence, i: int, n: int) -> list:
    """Every n-th item from the i-th: shards 0..n-1 cover every item exactly once."""
    return list(items[i::n])


def parse_devices(text: str | None) -> list[str] | None:
    """`cuda:0,cuda:1` / `cpu,cpu` / `auto` (every CUDA device, else one cpu) -> device names; ValueError if malformed."""
    if text is None:
        return None
    if text.strip() == "auto":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{k}" for k in range(count)] or ["cpu"]
    names = [d.strip() for d in text.split(",")]
    for d in names:
        if not (d == "cpu" or d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit())):
            raise ValueError(f"--devices: {d!r} is not a device (cpu, cuda, cuda:N, or the word auto)")
    return names


def _sequential(ckpts: list[Path], outs: list[Path], one: Callable[[Path, Path], int], prefetch: bool,
                on_done: Callable[[int, int], None] | None = None, index: Callable[[int], int] = int) -> list[int]:
    """Each checkpoint in turn, the next one's weights read ahead while this one is scored.

    The first one's are read while the process imports torch and transformers (seconds on a
    GPU machine), so even a single checkpoint's load starts from memory. `on_done(index(k),
    code)` after checkpoint k (`index`: its place in the whole sweep).
    """
    codes: list[int] = []
    froze = False
    with Prefetcher() as pf:
        try:
            if prefetch and ckpts:
                pf.ahead(ckpts[0])
            for k, (ckpt, out) in enumerate(zip(ckpts, outs)):
                if prefetch and k + 1 < len(ckpts):
                    pf.ahead(ckpts[k + 1])
                codes.append(one(ckpt, out))
                if k + 1 < len(ckpts):  # a model left in reference cycles is freed now, not when the collector happens to run
                    gc.collect()
                    if not froze:  # what is alive now (imports, caches) is not traversed again: ~1 ms a collection, not ~140
                        gc.freeze()
                        froze = True
                if on_done is not None:
                    on_done(index(k), codes[-1])
                if codes[-1] == EXIT_USAGE:  # bad usage or suite: the others would fail the same way
                    break
        finally:
            if froze:  # the caller's process (a notebook, pytest) gets its collector back as it was
                gc.unfreeze()
    return codes


def _worker(device: str, ckpts: list[Path], outs: list[Path], options: RunOptions, threads: int | None, prefetch: bool,
            entry: Callable, relay=None, report: Callable[[int, int], None] | None = None,
            first: int = 0, step: int = 1) -> list[int]:
    """One worker process: its checkpoints on its device, in turn (no bars: several processes share the terminal).

    `entry(ckpt, options, out, display, bars=False) -> exit code` is a module-level function (a
    spawned process imports it by name; run passes cli.run.run_one). Its checkpoints are the
    sweep's `first`, `first + step`, ...; `relay` (cli.display.LineRelay, or None) takes their
    lines to the parent's display, `report(index, code)` each one's exit code as it finishes.
    """
    if threads:
        import torch

        torch.set_num_threads(threads)
    options = options.replace(device=device)
    return _sequential(ckpts, outs, lambda c, o: entry(c, options, o, relay, bars=False), prefetch,
                       on_done=report, index=lambda k: first + k * step)


def run_sweep(ckpts: list[Path], outs: list[Path], options: RunOptions, one: Callable[[Path, Path, RunOptions], int], *,
              devices: list[str] | None = None, entry: Callable | None = None, display=None) -> list[int]:
    """Exit codes of `one(ckpt, out, options)` for every checkpoint (sequential), or of the same run in one worker per device.

    Workers call `entry(ckpt, options, out, display, bars=False)` instead: a module-level
    function, as a spawned process needs one it can import (cli.run.run_one, passed in: this
    module imports nothing of the command that runs it). `display` (cli.display.SweepDisplay):
    counts finished checkpoints and shows the workers' lines (the sequential `one` is the
    caller's, which shows its own).

    With several devices (sweep.pool), worker k takes checkpoints k, k+n, ... on device k
    (`options.device`); each worker reads its own next checkpoint ahead; a worker that dies
    leaves its unfinished checkpoints at exit code 3 and the others go on.
    """
    if not devices or len(devices) == 1 or len(ckpts) == 1:
        if devices:
            options = options.replace(device=devices[0])
        return _sequential(ckpts, outs, lambda c, o: one(c, o, options), options.prefetch, display.advance if display else None)
    if entry is None:
        raise TypeError("run_sweep: several devices need `entry`, a module-level function a worker process can import")
    from vibes_eval.sweep.pool import run_pool

    return run_pool(ckpts, outs, options, devices, options.prefetch, entry, display, worker=_worker)


def add_sweep_arguments(parser) -> None:
    """The `run` flags for several checkpoints: --devices, --shard, --no-prefetch."""
    g = parser.add_argument_group("sweeps (several checkpoints)")
    g.add_argument("--devices", metavar="LIST",
                   help="run checkpoints in parallel, one worker process per device: cuda:0,cuda:1,... | auto (every GPU) | cpu,cpu")
    g.add_argument("--shard", metavar="I/N",
                   help="only every N-th checkpoint from the I-th (0 <= I < N), e.g. one Slurm array task; needs --out; "
                        "merge the shards with `vibes-eval compare OUT/*/`")
    g.add_argument("--no-prefetch", action="store_true", help="do not read the next checkpoint's weights while one is scored")


@dataclass
class SweepPlan:
    """Which checkpoints this invocation runs, where each report goes, on which devices."""

    checkpoints: list[Path]
    outs: list[Path]
    base: Path
    devices: list[str] | None
    sharded: bool

    @property
    def compare(self) -> bool:
        """Write the side-by-side comparison (not per shard: the shards' folders are merged afterwards)."""
        return len(self.checkpoints) > 1 and not self.sharded


def plan_sweep(checkpoints: list[Path], options: RunOptions, base: Path, names: list[str]) -> SweepPlan:
    """The plan for `run CKPT... [--shard I/N] [--devices LIST]`; ValueError (a usage error) for bad flags.

    One checkpoint without --shard reports into `base` itself; otherwise each goes to
    `base/<names[k]>/` (`names`: one report folder name per checkpoint of the whole command
    line, so every shard and worker names a checkpoint alike).
    """
    sh = parse_shard(options.shard)
    devices = parse_devices(options.devices)
    if devices and options.device:
        raise ValueError("--devices and --device: give one of them")
    ckpts = list(checkpoints)
    if sh is None and len(ckpts) == 1:
        return SweepPlan(ckpts, [base], base, devices, False)
    if sh:
        if options.out is None:
            raise ValueError("--shard: needs --out DIR, the same folder for every shard (merge with `vibes-eval compare DIR/*/`)")
        ckpts, names = shard(ckpts, *sh), shard(names, *sh)
    return SweepPlan(ckpts, [base / n for n in names], base, devices, sh is not None)
