"""What `run` and `watch` add around a scorecard: `--baseline`, `--baseline-any-suite`, `--summary-md`.

The commands call four hooks: `prepare` once (load the baseline; a bad one is exit 2 before
anything is loaded), `suite_problem` once the suite is known (another suite's baseline is exit
2), `apply` before the reports are written (the comparison and a `regression` verdict), and
`publish` after (the before/after table on the terminal, the CI summaries). Nothing heavy is
imported at module level: `vibes-eval --help` reads the arguments from here.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_guard_arguments", "apply", "prepare", "publish", "suite_problem"]


def add_guard_arguments(parser) -> None:
    """--baseline, --baseline-any-suite, --summary-md."""
    parser.add_argument("--baseline", type=Path, metavar="REPORT",
                        help="an earlier report folder or scorecard.json: a prompt that passed there and fails now, or a "
                             "signal that fell past its tolerance, fails the gate (diagnosis regression)")
    parser.add_argument("--baseline-any-suite", action="store_true",
                        help="compare with a baseline that ran another suite (by default a usage error, exit 2)")
    parser.add_argument("--summary-md", type=Path, metavar="FILE",
                        help="append a Markdown summary (verdict, diagnoses, per-prompt table) to FILE; with "
                             "$GITHUB_STEP_SUMMARY set it is appended there too, with ::error:: annotations")


def prepare(args) -> str | None:
    """Load `--baseline` into `args.baseline_card`; the one-line usage error, or None."""
    args.baseline_card = None
    if getattr(args, "baseline", None) is None:
        return None
    from vibes_eval.baseline import BaselineError, load_baseline

    try:
        args.baseline_card = load_baseline(args.baseline)
    except BaselineError as e:
        return str(e)
    return None


def suite_problem(args, suite) -> str | None:
    """Why the baseline cannot be compared with a run of `suite` (exit 2), or None."""
    card = getattr(args, "baseline_card", None)
    if card is None:
        return None
    from vibes_eval.baseline import BaselineError, check_suite

    try:
        check_suite(card[0], card[1], suite.sha256, getattr(args, "baseline_any_suite", False))
    except BaselineError as e:
        return str(e)
    return None


def apply(sc, args):
    """The scorecard with the baseline comparison (and a regression verdict) when --baseline was given."""
    card = getattr(args, "baseline_card", None)
    if card is None or sc is None:
        return sc
    from vibes_eval.baseline import apply_baseline

    return apply_baseline(sc, card[0], card[1])


def publish(sc, args, out: Path | None, console=None) -> None:
    """After the reports are written: the before/after table (unless quiet) and the CI summaries."""
    if sc.baseline is not None and not getattr(args, "quiet", False):
        from rich.console import Console

        from vibes_eval.baseline import render_baseline

        render_baseline(sc.baseline, console or Console())
    from vibes_eval.summary import emit_summaries

    emit_summaries(sc, getattr(args, "summary_md", None), report=(out / "scorecard.html") if out else None)
