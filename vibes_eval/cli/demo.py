"""`vibes-eval demo`: build the toy zoo (cached) and score every variant with the shapes suite.

Shows what the gate does: the healthy toy passes, each broken one fails with its diagnosis.
The exit code is 0 when every variant got the verdict it should, 1 otherwise.
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.errors import EXIT_GATE, EXIT_OK

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

    from vibes_eval.api import evaluate
    from vibes_eval.errors import EvaluationFailed
    from vibes_eval.report.files import write_reports
    from vibes_eval.resources import bundled_suite, cache_root
    from vibes_eval.suite.schema import load_suite
    from vibes_eval.toy.factory import build
    from vibes_eval.toy.progress import Bars
    from vibes_eval.toy.variants import VARIANTS

    out: Path = args.out
    console = Console()
    console.print(f"[bold]toy zoo[/]: written once from the weights shipped in the package (or trained), cached in {cache_root()}")
    with Bars.rich() as bars:
        build(out / "zoo", list(VARIANTS), seed=args.seed, log=bars.log, bars=bars)
    suite = load_suite(bundled_suite("shapes"))
    table = Table(title="vibes-eval demo: the toy zoo through the gate", title_justify="left")
    for col in ("variant", "exit", "verdict", "diagnoses", "as expected"):
        table.add_column(col, no_wrap=col != "diagnoses")
    cards = {}
    with Bars.rich() as bars:
        tick = bars.stage("scoring the toy zoo", len(VARIANTS))
        for i, name in enumerate(VARIANTS):
            try:
                cards[name] = evaluate(out / "zoo" / name, suite, tune_malloc=True)
            except EvaluationFailed as e:  # the scorecard says why
                cards[name] = e.scorecard
            write_reports(cards[name], out / name)
            tick(i + 1, name)
    ok = True
    for name, sc in cards.items():
        code, diagnoses = sc.verdict.exit_code, set(sc.verdict.diagnoses)
        want = EXPECTED[name]
        good = (code == 0 and not diagnoses) if not want else (code == 1 and bool(want & diagnoses))
        ok &= good
        table.add_row(name, str(code), sc.verdict.status.value, ", ".join(sorted(diagnoses)) or "-",
                      "[green]yes[/]" if good else "[red]NO[/]")
    console.print(table)
    console.print(f"what each variant breaks: vibes-eval toy list; reports: {out}/<variant>/scorecard.html")
    return EXIT_OK if ok else EXIT_GATE
