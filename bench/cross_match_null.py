"""How often does a model that cannot tell the images apart pass cross_match? (simulation)

    python bench/cross_match_null.py [--sims 20000] [--images 8 10 40] [--seed 0]

Draws likelihood matrices from several "blind" models, runs them through the real
`probe_cross_match` with the runner's comparison plan (`comparison_plan`, at most
CROSS_MATCH_K other images per reference), and prints the share that pass: the false-pass
rate, with a 95% interval. The old rule (top-1 share >= 2x chance, over the full matrix) is
printed beside it. Blind models, each image's references and likelihoods drawn afresh per run:

- iid: every cell independent noise (a model whose answers move with the pixels at random);
- image effect: a strong per-image offset (brightness: some image raises every reference) plus noise;
- random features: log p = <reference vector, image features> (a random projector: image
  dependent, meaningless), 4 dimensions;
- bf16 ties: iid noise rounded to 1/16 nat (many ties, which count half);
- all tied: every image gives the same likelihood (a zero projector); never passes.
"""

from __future__ import annotations

import argparse
import math
import random


def _blind(kind: str, refs: list[str], rng: random.Random):
    """A function (ref, image) -> log-likelihood of one blind model."""
    if kind == "iid":
        return lambda r, j: rng.gauss(0, 1)
    if kind == "image effect":
        offset = {j: rng.gauss(0, 3) for j in refs}
        return lambda r, j: offset[j] + rng.gauss(0, 1)
    if kind == "random features":
        a = {r: [rng.gauss(0, 1) for _ in range(4)] for r in refs}
        f = {j: [rng.gauss(0, 1) for _ in range(4)] for j in refs}
        return lambda r, j: sum(x * y for x, y in zip(a[r], f[j]))
    if kind == "bf16 ties":
        return lambda r, j: round(rng.gauss(0, 0.2) * 16) / 16
    if kind == "all tied":
        return lambda r, j: -1.0
    raise ValueError(kind)


KINDS = ["iid", "image effect", "random features", "bf16 ties", "all tied"]


def _old_rule(matrix: dict[str, dict[str, float]]) -> bool:
    hits = 0.0
    for r, row in matrix.items():
        best = max(row.values())
        winners = [j for j, v in row.items() if v >= best - 1e-4]
        hits += 1 / len(winners) if r in winners else 0.0
    return hits / len(matrix) >= 2.0 / len(matrix)


def _interval(k: int, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a rate k/n."""
    z, p = 1.96, k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=20000)
    ap.add_argument("--images", type=int, nargs="+", default=[8, 10, 40])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from vibes_eval.probes.grounding import CROSS_MATCH_ALPHA, CROSS_MATCH_K, comparison_plan, probe_cross_match
    from vibes_eval.records import Status

    rng = random.Random(args.seed)
    table = Table(title=f"cross_match false-pass rate of blind models, {args.sims} simulated suites each "
                        f"(alpha {CROSS_MATCH_ALPHA}, at most {CROSS_MATCH_K} other images per reference)", title_justify="left")
    for col in ("images", "blind model", "false passes", "rate (95% interval)", "old rule (2x chance)"):
        table.add_column(col, justify="right" if col != "blind model" else "left")
    for n in args.images:
        refs = [f"p{i:03d}" for i in range(n)]
        plan = comparison_plan(refs)
        for kind in KINDS:
            passed = old = 0
            for _ in range(args.sims):
                ll = _blind(kind, refs, rng)
                matrix = {r: {j: ll(r, j) for j in [r, *plan[r]]} for r in refs}
                passed += probe_cross_match(matrix).status == Status.PASS
                if n <= 10:
                    full = {r: {j: ll(r, j) for j in refs} for r in refs}
                    old += _old_rule(full)
            lo, hi = _interval(passed, args.sims)
            table.add_row(str(n), kind, f"{passed}/{args.sims}", f"{passed / args.sims:.4f} ({lo:.4f}-{hi:.4f})",
                          f"{old / args.sims:.3f}" if n <= 10 else "-")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
