"""Several saved scorecards side by side: verdicts, prompts, fingerprint differences, checkpoint signals.

Reads scorecard.json files only (pydantic, rich, jinja2), so `vibes-eval compare` runs where
torch cannot be imported: compare on a laptop or in CI the reports a GPU box left behind.

A row *differs* when its checkpoints disagree; within such a row the *odd* cells are those
that differ from the most common value (ties go to the leftmost column), so with two
checkpoints the second column is the one highlighted.
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.compare_rows import (  # re-exported: the rows are this module's public surface too
    MAX_SCORECARD_BYTES,
    CompareError,
    PromptRow,
    SignalRow,
    ValueRow,
    column_labels,
    fingerprint_diff,
    is_headline,
    load_reports,
    prompt_rows,
    report_dir,
    signal_rows,
    verdict_rows,
    worst_exit_code,
)
from vibes_eval.errors import EXIT_USAGE
from vibes_eval.records import PromptResult, Scorecard
from vibes_eval.render.terminal import STATUS_STYLE, terminal_safe, truncate
from vibes_eval.safety import say, strip_control

__all__ = [
    "MAX_SCORECARD_BYTES",
    "CompareError",
    "PromptRow",
    "SignalRow",
    "ValueRow",
    "add_compare_parser",
    "column_labels",
    "compare_command",
    "compare_scorecards",
    "fingerprint_diff",
    "load_reports",
    "prompt_rows",
    "render_compare",
    "render_compare_html",
    "signal_rows",
    "verdict_rows",
    "worst_exit_code",
    "write_compare_html",
]

DIFF_STYLE = "bold yellow"


# ---------------------------------------------------------------- terminal


def render_compare(scorecards: list[Scorecard], console=None, only_diff: bool = False, *, labels=None) -> None:
    """Print the comparison: verdicts, prompts, fingerprint differences, checkpoint signals.

    Args:
        scorecards: The runs, one column each.
        console: A `rich.console.Console`; a new one on stdout when None.
        only_diff: Show only the prompts, fingerprint fields and signals that differ.
        labels: Column titles (default: `column_labels(scorecards)`).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    labels = [strip_control(label, newlines=False) for label in (labels or column_labels(scorecards))]
    scorecards = [terminal_safe(sc) for sc in scorecards]  # no answer or name paints the terminal

    def table(title: str, first: str, caption: str | None = None) -> Table:
        t = Table(title=title, title_justify="left", caption=caption, caption_justify="left", expand=True)
        t.add_column(first, no_wrap=True, overflow="fold", max_width=28)
        for label in labels:
            t.add_column(Text(label), ratio=1, overflow="fold")
        return t

    def key(name: str, differs: bool) -> Text:
        return Text(("≠ " if differs else "  ") + name, style=DIFF_STYLE if differs else "")

    t = table("verdict", "")
    for row in verdict_rows(scorecards):
        if row.key == "verdict":
            cells = [Text(v, style=STATUS_STYLE[sc.verdict.status]) for v, sc in zip(row.values, scorecards)]
        else:
            cells = [Text(v, style=DIFF_STYLE if odd else "") for v, odd in zip(row.values, row.odd)]
        t.add_row(key(row.key, row.differs), *cells)
    console.print(t)

    rows = prompt_rows(scorecards)
    differing = sum(r.differs for r in rows)
    t = table("prompts", "id", f"≠ {differing} of {len(rows)} prompts differ (status or answer)")
    for row in (r for r in rows if r.differs or not only_diff):
        t.add_row(key(row.id, row.differs), *(_prompt_cell(c, odd) for c, odd in zip(row.cells, row.odd)))
    console.print(t)

    fields = fingerprint_diff(scorecards)
    shown = [r for r in fields if r.differs or (not only_diff and is_headline(r.key))]
    hidden = len(fields) - len(shown)
    caption = f"{hidden} more field{'s' if hidden != 1 else ''} alike{'' if only_diff else ', listed in the HTML'}"
    t = table("fingerprint", "field", caption if hidden else None)
    for row in shown:
        cells = [Text("-", style="dim") if v is None else
                 Text(truncate(v.replace("\n", "\\n"), 80), style=DIFF_STYLE if odd else "")
                 for v, odd in zip(row.values, row.odd)]
        t.add_row(key(row.key, row.differs), *cells)
    console.print(t)

    signals = signal_rows(scorecards, only_diff)
    if signals:
        t = table("checkpoint signals", "probe")
        for row in signals:
            cells = []
            for s, odd in zip(row.cells, row.odd):
                if s is None:
                    cells.append(Text("-", style="dim"))
                    continue
                cell = Text(s.status.value.upper(), style=STATUS_STYLE[s.status])
                if s.score is not None:
                    cell.append(f" {s.score:.2f}", style=DIFF_STYLE if odd else "dim")
                cells.append(cell)
            t.add_row(key(row.probe, row.differs), *cells)
        console.print(t)


def _prompt_cell(p: PromptResult | None, odd: bool):
    from rich.text import Text

    if p is None:
        return Text("-", style="dim")
    cell = Text(p.status.value.upper(), style=STATUS_STYLE[p.status])
    cell.append(" ")
    if p.answer is None:
        cell.append("(no answer)", style="italic dim")
    else:
        # Text, never markup: a model's "[bold]" prints as itself
        cell.append(truncate(p.answer) if p.answer.strip() else "''", style=DIFF_STYLE if odd else "")
    return cell


# ---------------------------------------------------------------- HTML (render/compare_html.py)

from vibes_eval.render.compare_html import render_compare_html, write_compare_html  # noqa: E402 - re-exported

# ---------------------------------------------------------------- commands


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

    reports = list(getattr(args, "reports", None) or [])
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
