"""`vibes-eval demo`: build the toy zoo (cached) and score every variant with the shapes suite.

Shows what the gate does: the healthy toy passes, each broken one fails with its diagnosis.
The exit code is 0 when every variant got the verdict it should, 1 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["EXPECTED", "demo_command"]

# what each variant must be diagnosed with (any one of the set)
EXPECTED: dict[str, set[str]] = {
    "healthy": set(),
    "disconnected": {"projector_disconnected", "image_blind"},
    "zero-projector": {"projector_disconnected"},
    "missing-projector": {"projector_disconnected"},
    "image-blind": {"image_blind"},
    "gibberish": {"gibberish"},
    "wrong-template": {"template_mismatch"},
}


def demo_command(args) -> int:
    """Build the zoo into OUT/zoo, run each variant into OUT/<variant>/, print one summary table."""
    from rich.console import Console
    from rich.table import Table

    from vibes_eval.cli import main as cli
    from vibes_eval.run import REPO
    from vibes_eval.toy.factory import VARIANTS, build
    from vibes_eval.toy.progress import Bars

    out: Path = args.out
    console = Console()
    console.print(f"[bold]toy zoo[/]: written once from the weights shipped in the package (or trained), cached in {_cache()}")
    with Bars.rich() as bars:
        build(out / "zoo", list(VARIANTS), seed=args.seed, log=bars.log, bars=bars)
    table = Table(title="vibes-eval demo: the toy zoo through the gate", title_justify="left")
    for col in ("variant", "exit", "verdict", "diagnoses", "as expected"):
        table.add_column(col, no_wrap=col != "diagnoses")
    ok = True
    with Bars.rich() as bars:
        tick = bars.stage("scoring the toy zoo", len(VARIANTS))
        codes = {}
        for i, name in enumerate(VARIANTS):
            codes[name] = cli(["run", str(out / "zoo" / name), "--suite", str(REPO / "suites" / "shapes.yaml"),
                               "--out", str(out / name), "--quiet"])
            tick(i + 1, name)
    for name in VARIANTS:
        report, code = out / name, codes[name]
        sc = json.loads((report / "scorecard.json").read_text())
        diagnoses = set(sc["verdict"]["diagnoses"])
        want = EXPECTED[name]
        good = (code == 0 and not diagnoses) if not want else (code == 1 and bool(want & diagnoses))
        ok &= good
        table.add_row(name, str(code), sc["verdict"]["status"], ", ".join(sorted(diagnoses)) or "-",
                      "[green]yes[/]" if good else "[red]NO[/]")
    console.print(table)
    console.print(f"what each variant breaks: vibes-eval toy list; reports: {out}/<variant>/scorecard.html")
    return 0 if ok else 1


def _cache() -> Path:
    from vibes_eval.toy.factory import cache_root

    return cache_root()
