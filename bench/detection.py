"""Every decisive signal for every toy variant, with its threshold and the margin.

    python bench/detection.py [--seed 0] [--suite suites/shapes.yaml]

Builds (or reuses) the toy zoo, runs the suite on each variant in one process, and prints
one table: rows are signals, columns are variants. The margin column is healthy / worst
broken value on the side the threshold judges (how far apart healthy and broken sit).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--suite", type=Path, default=ROOT / "suites" / "shapes.yaml")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from vibes_eval.api import evaluate
    from vibes_eval.errors import EvaluationFailed
    from vibes_eval.judge import thresholds
    from vibes_eval.suite.schema import load_suite
    from vibes_eval.toy.factory import build
    from vibes_eval.toy.variants import VARIANTS

    zoo = Path(tempfile.mkdtemp(prefix="zoo-"))
    build(zoo, list(VARIANTS), seed=args.seed, log=lambda m: None)
    rows: dict[str, dict[str, object]] = {}
    verdicts = {}
    suite = load_suite(args.suite)
    for name in VARIANTS:
        try:
            card = evaluate(zoo / name, suite, tune_malloc=True)
        except EvaluationFailed as e:
            card = e.scorecard
        sc = card.model_dump(mode="json")
        verdicts[name] = (card.verdict.exit_code, card.verdict.diagnoses)
        sig = {s["probe"]: s for s in sc["signals"]}
        ev = lambda p, k, sig=sig: sig.get(p, {}).get("evidence", {}).get(k)  # noqa: E731
        rows.setdefault("image_gain (nats/token)", {})[name] = ev("image_gain", "gain_nats_per_token")
        rows.setdefault("cross_match (share won)", {})[name] = ev("cross_match", "share")
        rows.setdefault("cross_match p-value", {})[name] = ev("cross_match", "p_value")
        rows.setdefault("counterfactual (similarity)", {})[name] = ev("counterfactual", "mean_similarity")
        rows.setdefault("likelihood (nats/token)", {})[name] = ev("likelihood", "mean_loglik_nats_per_token")
        rows.setdefault("template_fit margin (nats/token)", {})[name] = ev("template_fit", "margin_nats_per_token")
        rows.setdefault("projector norm ratio", {})[name] = ev("projector_norm", "norm_ratio")
        rows.setdefault("projector missing tensors", {})[name] = len(ev("projector_missing", "missing") or [])
        garbled = sum(
            any(s["probe"] in ("nonwords", "loops", "empty") and s["status"] == "fail" for s in p["signals"]) for p in sc["prompts"]
        )
        rows.setdefault("answers failing language probes", {})[name] = f"{garbled}/{len(sc['prompts'])}"
    th = thresholds
    limits = {
        "image_gain (nats/token)": f"{th.IMAGE_GAIN.words()} fails",
        "cross_match (share won)": "chance 0.5",
        "cross_match p-value": f"{th.CROSS_MATCH_ALPHA.fails} {th.CROSS_MATCH_ALPHA.value:g} fails",
        "counterfactual (similarity)": f"{th.COUNTERFACTUAL_SAME.words()} fails",
        "likelihood (nats/token)": f"{th.LIKELIHOOD.words()} fails",
        "template_fit margin (nats/token)": f"{th.TEMPLATE_MARGIN.words()} fails",
        "projector norm ratio": f"{th.NORM_RATIO_LOW.words()} fails",
        "projector missing tensors": "> 0 fails",
        "answers failing language probes": f"{th.GIBBERISH_SHARE.fails} {th.GIBBERISH_SHARE.value:.0%} gibberish",
    }
    table = Table(title=f"detection signals, suite {args.suite.name}, zoo seed {args.seed}", title_justify="left")
    table.add_column("signal")
    table.add_column("threshold")
    for name in VARIANTS:
        table.add_column(name, justify="right")
    for row, vals in rows.items():
        fmt = lambda v: (f"{v:.3g}" if 0 < abs(v) < 0.01 else f"{v:.3f}") if isinstance(v, float) else str(v)  # noqa: E731
        table.add_row(row, limits[row], *(fmt(vals.get(n)) for n in VARIANTS))
    table.add_row("exit code", "", *(str(verdicts[n][0]) for n in VARIANTS))
    table.add_row("diagnoses", "", *(", ".join(verdicts[n][1]) or "-" for n in VARIANTS))
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
