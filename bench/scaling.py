"""Cost of a run against suite size: likelihood rows and evaluate time for 10 ... 160 toy prompts.

    python bench/scaling.py [--sizes 10 20 40 80 160] [--repeats 2] [--threads 1] [--full]

Writes toy-world suites of N prompts (the 3/3/2/2 mix of suites/shapes.yaml: captioning, VQA,
reasoning, refusal; one freshly drawn scene per prompt, exact answers) and runs `evaluate` of
the healthy toy on each, counting the likelihood rows the adapter is asked to
score and the generations. Prints rows and seconds per N and their growth against N = first
size (each timed run on a freshly loaded adapter, so no cache carries over). cross_match
compares each reference with at most CROSS_MATCH_K other images, so rows
grow as N * K; `--full` also runs the old plan (every reference under every image, N^2 rows)
side by side, by lifting K for that run. Time is the minimum over `--repeats` runs.
Acceptance (issue 14): rows(160) <= 16 x rows(10); time grows no worse than linearly.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MIX = ["captioning"] * 3 + ["vqa"] * 3 + ["reasoning"] * 2 + ["refusal"] * 2
_VQA = ("color", "shape", "count")


def write_suite(folder: Path, n: int, seed: int = 0) -> Path:
    """A suite of `n` toy prompts in `folder` (suite.yaml + images/), the shapes.yaml mix repeated."""
    import yaml

    from vibes_eval.toy import world

    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    prompts = []
    for i in range(n):
        category = MIX[i % len(MIX)]
        scene = world.sample_scene(rng)
        qas = world.qa_pairs(scene, rng)
        if category == "captioning":
            qa = qas[0]
        elif category == "vqa":
            qa = next(q for q in qas if q.family == _VQA[i % len(MIX) - 3])  # positions 3, 4, 5: colour, shape, count
        elif category == "reasoning":
            qa = [q for q in qas if q.family == "reasoning"][i % 2]
        else:
            qa = next(q for q in qas if q.family == "refusal")
        pid = f"p{i:03d}-{category}"
        world.render(scene).save(folder / "images" / f"{pid}.png")
        entry = {"id": pid, "category": category, "image": f"images/{pid}.png", "question": qa.question, "reference": qa.answer}
        entry["expect"] = {"refuse": True} if category == "refusal" else {"any": [qa.answer.split()[-1]]}
        prompts.append(entry)
    suite = {"name": f"scaling-{n}", "description": f"{n} toy prompts", "defaults": {"max_new_tokens": 32},
             "gate": {"max_fail": n, "max_warn": n}, "prompts": prompts}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


class Counting:
    """The adapter, counting the likelihood rows and generations asked of it."""

    def __init__(self, adapter):
        self._a, self.rows, self.generations = adapter, 0, 0

    def __getattr__(self, name):
        return getattr(self._a, name)

    def score(self, requests, targets):
        self.rows += len(requests)
        return self._a.score(requests, targets)

    def generate(self, requests):
        self.generations += len(requests)
        return self._a.generate(requests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--full", action="store_true", help="also run the N^2 plan (every reference under every image)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from rich.console import Console
    from rich.table import Table

    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.api import evaluate
    from vibes_eval.probes import grounding
    from vibes_eval.suite.schema import load_suite
    from vibes_eval.toy.factory import build

    k = grounding.CROSS_MATCH_K
    plans = [("sampled", k)] + ([("full", 10**6)] if args.full else [])
    with tempfile.TemporaryDirectory(prefix="scaling-") as tmp:
        work = Path(tmp)
        build(work / "zoo", ["healthy"], log=lambda m: None)
        ckpt = work / "zoo" / "healthy"
        def load():  # a fresh adapter per timed run: no image features or prefix caches left from the last one
            return HFAdapter(ckpt, detect(ckpt, None), device=None, dtype=None, template=None, batch_size=None)

        suites = {n: load_suite(write_suite(work / f"suite-{n}", n)) for n in args.sizes}
        evaluate(load(), suites[args.sizes[0]], label=str(ckpt))  # warm-up: the process's first-call costs
        results = []
        for plan, k_plan in plans:
            grounding.CROSS_MATCH_K = k_plan
            for n in args.sizes:
                best, counted, sc = None, None, None
                for _ in range(args.repeats):
                    counted = Counting(load())
                    t0 = time.perf_counter()
                    sc = evaluate(counted, suites[n], label=str(ckpt))
                    dt = time.perf_counter() - t0
                    best = dt if best is None else min(best, dt)
                cm = next(s for s in sc.signals if s.probe == "cross_match")
                results.append({"plan": plan, "n": n, "rows": counted.rows, "generations": counted.generations, "seconds": best,
                                "cross_match": f"{cm.status.value} {cm.score} p={cm.evidence.get('p_value')}"})
        grounding.CROSS_MATCH_K = k
    table = Table(title=f"evaluate against suite size, healthy toy (cross_match K = {k}; load average {os.getloadavg()[0]:.1f})",
                  title_justify="left")
    columns = ("plan", "prompts N", "likelihood rows", "rows / first", "generations", "evaluate s", "s / first",
               "N / first", "ms / prompt", "cross_match")
    for col in columns:
        table.add_column(col, justify="left" if col in ("plan", "cross_match") else "right")
    for r in results:
        first = next(x for x in results if x["plan"] == r["plan"] and x["n"] == args.sizes[0])
        table.add_row(r["plan"], str(r["n"]), str(r["rows"]), f"{r['rows'] / first['rows']:.1f}x", str(r["generations"]),
                      f"{r['seconds']:.2f}", f"{r['seconds'] / first['seconds']:.1f}x", f"{r['n'] / first['n']:.0f}x",
                      f"{1000 * r['seconds'] / r['n']:.0f}", r["cross_match"])
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
