"""Do the shared-prefix path and the plain processor path agree, on this machine and dtype?

    python bench/prefix_check.py CKPT [--dtype float32|bfloat16] [--device cuda|cpu]

Loads CKPT twice (with and without `prefix_cache`), asks every prompt of
suites/shapes.yaml with its real image, a blank one and another prompt's image, scores every
reference under the same requests, and prints: identical answers (k of n), the largest and the
mean absolute difference of the per-token log-likelihoods, and each path's seconds. In float32 the
two agree to ~1e-6 (tests/test_prefix.py asserts it on the CPU); in bfloat16 different kernels and
summation orders make small differences that can flip a greedy token late in an answer.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--dtype")
    ap.add_argument("--device")
    ap.add_argument("--suite", type=Path, default=ROOT / "suites" / "shapes.yaml")
    args = ap.parse_args(argv)

    import torch

    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.adapters.opening import open_adapter
    from vibes_eval.records import Request
    from vibes_eval.suite.schema import load_suite

    suite = load_suite(args.suite)
    ps = suite.prompts
    reqs, targets = [], []
    for i, p in enumerate(ps):
        other = ps[(i + 1) % len(ps)]
        for variant, image in (("real", p.path), ("blank", p.path), ("swap", other.path)):
            reqs.append(Request(prompt_id=p.id, variant=variant, image=image, question=p.question, max_new_tokens=suite.max_new_tokens(p)))
            targets.append(p.reference or "a red circle")
    out = {}
    for name, prefix in (("prefix", True), ("plain", False)):
        ad = open_adapter(AdapterSpec(checkpoint=args.ckpt, device=args.device, dtype=args.dtype, prefix_cache=prefix))
        sync = torch.cuda.synchronize if ad.device.startswith("cuda") else (lambda: None)
        sync()
        t0 = time.perf_counter()
        answers = ad.generate(reqs)
        sync()
        t1 = time.perf_counter()
        scores = ad.score(reqs, targets)
        sync()
        out[name] = {"answers": answers, "scores": scores, "generate_s": t1 - t0, "score_s": time.perf_counter() - t1,
                     "device": ad.device, "dtype": ad.dtype}
        del ad
    a, b = out["prefix"], out["plain"]
    same = sum(x.text == y.text and x.finish == y.finish for x, y in zip(a["answers"], b["answers"]))
    diffs = [abs(x - y) for x, y in zip(a["scores"], b["scores"]) if x is not None and y is not None]
    print(f"{args.ckpt.name} on {a['device']} ({a['dtype']}): {len(reqs)} requests")
    print(f"  identical answers: {same}/{len(reqs)}")
    print(f"  log-likelihood |prefix - plain|: max {max(diffs):.2e}, mean {sum(diffs) / len(diffs):.2e} nats/token ({len(diffs)} scored)")
    for name in ("prefix", "plain"):
        print(f"  {name:6} generate {out[name]['generate_s']:.2f} s, score {out[name]['score_s']:.2f} s")
    for x, y in zip(a["answers"], b["answers"]):
        if x.text != y.text:
            print(f"  differs: {x.prompt_id}/{x.variant}: {x.text[:50]!r} vs {y.text[:50]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
