"""`vibes-eval run` over 1, 2 and 4 checkpoints in one invocation: time per checkpoint, peak RSS.

    python bench/many.py [--counts 1 2 4] [--base healthy] [--repeats 1] [--threads 1]

The checkpoints are copies of one (`--base`: a toy variant name such as `healthy`, `bench`,
or a folder), each in its own folder, so the run loads each anew as it would distinct
checkpoints. Each invocation is a fresh subprocess timed end to end; its peak RSS is that
child's own ru_maxrss (os.wait4: the getrusage of that one child). With several checkpoints
the run also writes the side-by-side comparison, as a user would see it.

Prints one row per count: wall seconds, seconds per checkpoint, the run_suite seconds the
scorecards record (summed), what is left (interpreter start, imports, loads, reports), and
the peak RSS. The run loads checkpoints one at a time, so RSS should stay near one model's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_naive import ROOT, SUITE, child_env, provenance, resolve_ckpt, spawn, vibes_eval_cmd  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="checkpoints per invocation (default 1 2 4)")
    ap.add_argument("--base", default="healthy", help="what to copy: a toy variant name, bench, or a folder (default healthy)")
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--repeats", type=int, default=1, help="invocations per count; the median is printed")
    ap.add_argument("--threads", type=int, help="torch CPU threads per child (OMP_NUM_THREADS), as in vs_naive.py")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    env = child_env(args.threads)
    rows = []
    print(f"code: {provenance()}; threads per child: {args.threads or 'torch default'}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="many-") as tmp:
        work = Path(tmp)
        base = resolve_ckpt(args.base, work / "base", args.seed)
        copies = []
        for i in range(max(args.counts)):
            dest = work / "ckpts" / f"{base.name}-{i + 1}"
            shutil.copytree(base, dest)
            copies.append(dest)
        print(f"{args.base}: {base} copied {len(copies)} times", flush=True)
        for k in args.counts:
            runs = []
            for r in range(args.repeats):
                out = work / f"out-{k}-{r}"
                res = spawn([*vibes_eval_cmd(), "run", *map(str, copies[:k]), "--suite", str(args.suite), "--out", str(out), "--quiet"],
                            work, f"run-{k}-{r}", env)
                if res["rc"] not in (0, 1):
                    raise SystemExit(f"vibes-eval run failed (rc {res['rc']}):\n{res['stderr_tail']}")
                cards = [out / "scorecard.json"] if k == 1 else [out / c.name / "scorecard.json" for c in copies[:k]]
                res["run_suite_s"] = sum(json.loads(c.read_text())["seconds"] for c in cards)
                runs.append(res)
                shutil.rmtree(out, ignore_errors=True)
            wall = statistics.median(x["seconds"] for x in runs)
            suite_s = statistics.median(x["run_suite_s"] for x in runs)
            rows.append({"checkpoints": k, "wall_s": wall, "per_checkpoint_s": wall / k, "run_suite_s": suite_s,
                         "rest_s": wall - suite_s, "peak_rss_mib": max(x["peak_rss_mib"] for x in runs), "repeats": args.repeats})
            row = rows[-1]
            print(f"  {k} checkpoint(s): {row['wall_s']:6.2f} s, {row['per_checkpoint_s']:6.2f} s per checkpoint "
                  f"(run_suite {row['run_suite_s']:.2f} s, the rest {row['rest_s']:.2f} s), peak RSS {row['peak_rss_mib']:.0f} MiB",
                  flush=True)
    print(f"(load average now {os.getloadavg()[0]:.1f}; cwd for the runs: {ROOT})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
