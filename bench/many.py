"""`vibes-eval run` over 1, 2, 4, 8 checkpoints: sequential vs overlapped (next weights read ahead) vs several devices.

    python bench/many.py [--counts 1 2 4 8] [--base bench] [--devices cpu,cpu] [--repeats 1] [--threads 1] [--warm]
                         [--read-mbps 20]

The checkpoints are copies of one (`--base`: a toy variant name such as `healthy`, `bench`,
`bench:bench-512`, or a folder), each in its own folder, so the run loads each anew as it would
distinct checkpoints. For every count the modes run side by side (alternating, each a fresh
subprocess timed end to end):

- `sequential`: `run A B C ... --no-prefetch`: load, score, load, score ...
- `overlapped`: `run A B C ...`: while one checkpoint is scored, a background thread reads the
  next one's weights into host memory (vibes_eval/sweep/runner.py);
- `devices` (with `--devices`): `run A B C ... --devices cpu,cpu`: one worker process per device.

Before every invocation the copies' pages are dropped from the page cache
(posix_fadvise DONTNEED, after a sync), so each load reads the disk as a sweep over a training
run's checkpoints would; `--warm` keeps them cached instead. Prints per count and mode the wall
seconds, the ratio to sequential, the evaluate seconds the scorecards record (summed) and the
peak RSS of the run's own process (a devices run's workers are not in it); and whether every
mode reached the same verdicts.

`--read-mbps N` caps every child's disk reads at N MiB/s (a cgroup, bench/throttle.py; Linux,
root): a disk as slow, relative to the scoring, as a GPU sweep's is (a 7B's 14 GB take about as
long to read as its suite takes to score), which this CPU machine's fast disk and slow scoring
are not.

First, in one child process, the load alone: `HFAdapter(copy)` from a dropped page cache, and
after the read-ahead (sweep.Prefetcher) has read the copy, medians over the copies. Overlap can
save at most the load's share of a checkpoint's time; these two figures say how large it is here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throttle import ReadThrottle  # noqa: E402
from vs_naive import ROOT, SUITE, child_env, provenance, resolve_ckpt, spawn, vibes_eval_cmd  # noqa: E402


def drop_cache(folders: list[Path]) -> int:
    """Drop the files of `folders` from the page cache (clean pages only, hence the sync first); bytes advised."""
    os.sync()
    total = 0
    for folder in folders:
        for f in folder.rglob("*"):
            if f.is_file():
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    total += f.stat().st_size
                finally:
                    os.close(fd)
    return total


def verdicts(out: Path, ckpts: list[Path]) -> list[tuple]:
    """(checkpoint folder, status, diagnoses, answers) from each scorecard the run wrote."""
    cards = [out / "scorecard.json"] if len(ckpts) == 1 else [out / c.name / "scorecard.json" for c in ckpts]
    rows = []
    for ckpt, c in zip(ckpts, cards):
        sc = json.loads(c.read_text())
        rows.append((ckpt.name, sc["verdict"]["status"], tuple(sc["verdict"]["diagnoses"]),
                     tuple(p["answer"] for p in sc["prompts"]), sc["seconds"]))
    return rows


def load_times(copies: list[str]) -> None:
    """Child: print {"cold_s", "prefetched_s", "read_ahead_s"}, medians over the copies (the first load warms imports)."""
    import time

    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.sweep.runner import Prefetcher

    paths = [Path(c) for c in copies]
    HFAdapter(paths[0], detect(paths[0]))  # imports and first-time set-up, not measured
    cold, warm, ahead = [], [], []
    for p in paths:
        drop_cache([p])
        t0 = time.perf_counter()
        HFAdapter(p, detect(p))
        cold.append(time.perf_counter() - t0)
        drop_cache([p])
        t0 = time.perf_counter()
        with Prefetcher() as pf:
            pf.ahead(p)
            pf.wait()
        ahead.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        HFAdapter(p, detect(p))
        warm.append(time.perf_counter() - t0)
    print(json.dumps({"cold_s": statistics.median(cold), "prefetched_s": statistics.median(warm),
                      "read_ahead_s": statistics.median(ahead)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="checkpoints per invocation (default 1 2 4 8)")
    ap.add_argument("--base", default="bench", help="what to copy: a toy variant name, bench, bench:SIZE, or a folder (default bench)")
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--devices", help="also time `run --devices DEVICES` (e.g. cpu,cpu)")
    ap.add_argument("--device", help="--device for the sequential and overlapped runs (e.g. cuda)")
    ap.add_argument("--repeats", type=int, default=1, help="invocations per count and mode; the median is printed")
    ap.add_argument("--threads", type=int, help="torch CPU threads per process (OMP_NUM_THREADS), as in vs_naive.py")
    ap.add_argument("--warm", action="store_true", help="leave the copies in the page cache (default: drop them before each run)")
    ap.add_argument("--read-mbps", type=float, help="cap the children's disk reads at this many MiB/s (a cgroup; Linux, root)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    env = child_env(args.threads)
    modes = {"sequential": ["--no-prefetch"], "overlapped": []}
    if args.devices:
        modes["devices"] = ["--devices", args.devices]
    extra = ["--device", args.device] if args.device else []
    rows = []
    print(f"code: {provenance()}; threads per process: {args.threads or 'torch default'}; "
          f"page cache: {'warm' if args.warm else 'dropped before each run'}; "
          f"disk reads: {f'at most {args.read_mbps:g} MiB/s' if args.read_mbps else 'unthrottled'}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="many-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        pre = stack.enter_context(ReadThrottle(work, args.read_mbps)).enter if args.read_mbps else None
        base = resolve_ckpt(args.base, work / "base", args.seed)
        copies = []
        for i in range(max(args.counts)):
            dest = work / "ckpts" / f"{base.name}-{i + 1}"
            shutil.copytree(base, dest)
            copies.append(dest)
        size = sum(f.stat().st_size for f in base.rglob("*") if f.is_file())
        print(f"{args.base}: {base} ({size / 2**20:.1f} MiB) copied {len(copies)} times", flush=True)
        lt = spawn([sys.executable, str(Path(__file__).resolve()), "_load", *map(str, copies[:4])], work, "load", env, pre)
        if lt["rc"] != 0:
            raise SystemExit(f"load timing failed (rc {lt['rc']}):\n{lt['stderr_tail']}")
        load = json.loads(lt["stdout"].strip().splitlines()[-1])
        rows.append({"load": load})
        print(f"  load alone (median of {min(4, len(copies))}): {load['cold_s']:.3f} s from a dropped page cache, "
              f"{load['prefetched_s']:.3f} s after the read-ahead (which took {load['read_ahead_s']:.3f} s)", flush=True)
        for k in args.counts:
            runs: dict[str, list[dict]] = {m: [] for m in modes}
            seen: dict[str, list] = {}
            for r in range(args.repeats):
                for mode, flags in modes.items():
                    out = work / f"out-{k}-{mode}-{r}"
                    if not args.warm:
                        drop_cache(copies[:k])
                    res = spawn([*vibes_eval_cmd(), "run", *map(str, copies[:k]), "--suite", str(args.suite), "--out", str(out),
                                 "--quiet", *flags, *([] if mode == "devices" else extra)], work, f"run-{k}-{mode}-{r}", env, pre)
                    if res["rc"] not in (0, 1):
                        raise SystemExit(f"vibes-eval run ({mode}) failed (rc {res['rc']}):\n{res['stderr_tail']}")
                    got = verdicts(out, copies[:k])
                    res["run_suite_s"] = sum(g[-1] for g in got)
                    seen.setdefault(mode, [g[:-1] for g in got])
                    res.pop("stdout")
                    runs[mode].append(res)
                    shutil.rmtree(out, ignore_errors=True)
            seq = statistics.median(x["seconds"] for x in runs["sequential"])
            same = all(v == seen["sequential"] for v in seen.values())
            for mode in modes:
                wall = statistics.median(x["seconds"] for x in runs[mode])
                row = {"checkpoints": k, "mode": mode, "wall_s": round(wall, 3), "ratio_to_sequential": round(wall / seq, 3),
                       "run_suite_s": round(statistics.median(x["run_suite_s"] for x in runs[mode]), 3),
                       "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[mode]), "repeats": args.repeats,
                       "same_verdicts_and_answers": same}
                rows.append(row)
                print(f"  {k} checkpoint(s) {mode:>10}: {wall:6.2f} s ({row['ratio_to_sequential']:.2f}x sequential), "
                      f"evaluate {row['run_suite_s']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
            print(f"  {k} checkpoint(s): same verdicts and answers in every mode: {'yes' if same else 'NO'}", flush=True)
    print(f"(load average now {os.getloadavg()[0]:.1f}; cwd for the runs: {ROOT})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["_load"]:
        load_times(sys.argv[2:])
        sys.exit(0)
    sys.exit(main())
