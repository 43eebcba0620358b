"""`vibes-eval compare REPORT [REPORT ...]`: saved scorecards side by side (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vibes_eval.errors import EXIT_USAGE, CompareError
from vibes_eval.report.compare import column_labels, load_reports, render_compare, report_dir, worst_exit_code
from vibes_eval.report.compare_html import write_compare_html
from vibes_eval.safety import say

if TYPE_CHECKING:
    from vibes_eval.records import Scorecard

__all__ = ["add_compare_parser", "compare_command", "compare_scorecards"]


def compare_scorecards(scorecards: list[Scorecard], out_dir, console=None, only_diff: bool = False, *, labels=None,
                       sources=None) -> int:
    """Render the comparison, write `out_dir/compare.html`; return the worst exit code (for `run A B C`)."""
    labels = labels or column_labels(scorecards, sources)
    render_compare(scorecards, console, only_diff, labels=labels)
    write_compare_html(scorecards, Path(out_dir) / "compare.html", only_diff, labels=labels, sources=sources)
    return worst_exit_code(scorecards)


def add_compare_parser(subparsers):
    """Define `vibes-eval compare REPORT_DIR [REPORT_DIR ...] [--only-diff] [--html PATH]`; returns the sub-parser."""
    p = subparsers.add_parser(
        "compare",
        help="several saved scorecards side by side (terminal table and one HTML file; no torch needed)",
        description="Compare saved reports: verdicts, answers, fingerprint differences, checkpoint signals. "
        "The exit code is the worst of their gate results.",
    )
    p.add_argument("reports", nargs="+", type=Path, metavar="REPORT_DIR", help="a report folder or its scorecard.json")
    p.add_argument("--only-diff", action="store_true", help="show only the prompts, fields and signals that differ")
    p.add_argument(
        "--html", type=Path, metavar="PATH", help="where the HTML goes (default: compare.html next to the first report folder)"
    )
    return p


def compare_command(args, console=None) -> int:
    """Load the reports, print the comparison, write the HTML; return the worst exit code (2 on bad input)."""
    from rich.console import Console

    reports = list(args.reports or [])
    try:
        if not reports:
            raise CompareError("compare: give at least one REPORT_DIR")
        scorecards = load_reports(reports)
    except CompareError as e:
        say(str(e))
        return EXIT_USAGE
    html = args.html or report_dir(Path(reports[0])).parent / "compare.html"
    labels = column_labels(scorecards, reports)
    console = console or Console()
    render_compare(scorecards, console, args.only_diff, labels=labels)
    try:
        write_compare_html(scorecards, html, args.only_diff, labels=labels, sources=reports)
    except OSError as e:
        say(f"{html}: cannot write: {e.strerror or e}")
        return EXIT_USAGE
    console.print(f"HTML: {html}", highlight=False, markup=False)
    return worst_exit_code(scorecards)
