"""The terminal view of a Scorecard (Rich): verdict first, then prompts, checkpoint signals, fingerprint.

Every string that came from a model or a suite goes through `rich.text.Text`, never through
console markup, so an answer like "[bold]" or "[/]" prints as itself instead of breaking the
render. Before rendering, every string of the scorecard is passed through `terminal_safe`:
escape sequences (OSC window titles, CSI clear-screen, ...), other control characters and bidi
controls are stripped, and registered secrets redacted, so an answer cannot paint the terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from vibes_eval.records import BaselineComparison, PromptResult, Scorecard, Signal, Status
from vibes_eval.safety import redact, strip_control

__all__ = [
    "FINGERPRINT_FIELDS",
    "STATUS_STYLE",
    "fingerprint_summary",
    "problem_signals",
    "render_baseline",
    "render_scorecard",
    "status_counts",
    "terminal_safe",
    "truncate",
]

STATUS_STYLE = {
    Status.PASS: "bold green",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.SKIP: "dim",
}

FINGERPRINT_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("architecture", ("architecture", "architectures")),
    ("loader", ("loader",)),
    ("template", ("template",)),
    ("dtype", ("dtype", "torch_dtype")),
    ("device", ("device",)),
    ("visual tokens", ("visual_tokens", "visual_tokens_per_image", "image_tokens", "num_image_tokens")),
)
"""Label and the fingerprint keys it may be stored under (first present wins) for the short line."""

_ANSWER_CHARS = 60


def render_scorecard(scorecard: Scorecard, console=None) -> None:
    """Print a Scorecard: verdict, one row per prompt, checkpoint-level signals, fingerprint line.

    Args:
        scorecard: The run to show.
        console: A `rich.console.Console`; a new one on stdout when None.
    """
    from rich.console import Console

    console = console or Console()
    scorecard = terminal_safe(scorecard)
    console.print(_verdict_panel(scorecard))
    if scorecard.prompts:
        console.print(_prompt_table(scorecard.prompts))
    if scorecard.signals:
        console.print(_signal_table(scorecard.signals))
    console.print(_fingerprint_text(scorecard.fingerprint))


def terminal_safe(scorecard: Scorecard) -> Scorecard:
    """A copy of `scorecard` whose every string is stripped of control characters and redacted."""
    return Scorecard.model_validate(_clean(scorecard.model_dump()))


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return strip_control(redact(value))
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def status_counts(prompts: list[PromptResult]) -> str:
    """'10 prompts: 7 pass, 2 warn, 1 fail' (statuses in order of severity, zeros left out)."""
    counts = Counter(p.status for p in prompts)
    parts = [f"{counts[s]} {s.value}" for s in (Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP) if counts[s]]
    noun = "prompt" if len(prompts) == 1 else "prompts"
    return f"{len(prompts)} {noun}: {', '.join(parts)}" if parts else f"0 {noun}"


def problem_signals(prompt: PromptResult) -> list[Signal]:
    """The signals worth a reader's eye: warn/fail/error, or the skip reasons of a skipped prompt."""
    shown = {Status.WARN, Status.FAIL, Status.ERROR}
    if prompt.status == Status.SKIP:
        shown.add(Status.SKIP)
    return [s for s in prompt.signals if s.status in shown]


def fingerprint_summary(fingerprint: dict[str, Any]) -> list[tuple[str, str]]:
    """The few fingerprint fields a reader checks first, as (label, text); absent ones left out."""
    out = []
    for label, keys in FINGERPRINT_FIELDS:
        for key in keys:
            if fingerprint.get(key) is not None:
                value = fingerprint[key]
                # transformers configs store `architectures` as a list of one
                if isinstance(value, list) and len(value) == 1:
                    value = value[0]
                out.append((label, value if isinstance(value, str) else json.dumps(value, default=str)))
                break
    return out


def truncate(text: str, limit: int = _ANSWER_CHARS) -> str:
    """One line of at most `limit` characters (whitespace collapsed, an ellipsis when cut)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _status_text(status: Status) -> Any:
    from rich.text import Text

    return Text(status.value.upper(), style=STATUS_STYLE[status])


def _verdict_panel(sc: Scorecard):
    from rich.panel import Panel
    from rich.text import Text

    v = sc.verdict
    body = Text()
    body.append(f"VERDICT: {v.status.value.upper()}", style=STATUS_STYLE[v.status])
    body.append(f"   exit code {v.exit_code}\n", style="dim")
    body.append("checkpoint ", style="dim")
    body.append(sc.checkpoint + "\n")
    suite = sc.suite.get("name") or sc.suite.get("path") or "?"
    body.append("suite ", style="dim")
    body.append(f"{suite}   {status_counts(sc.prompts)}   {sc.seconds:.1f} s\n")
    if v.diagnoses:
        body.append("diagnoses ", style="dim")
        body.append(", ".join(v.diagnoses) + "\n", style=STATUS_STYLE[v.status])
    for sentence in v.summary:
        body.append("• ")
        body.append(sentence + "\n")
    body.rstrip()
    return Panel(body, title="vibes-eval", title_align="left", border_style=STATUS_STYLE[v.status].replace("bold ", ""))


def _prompt_table(prompts: list[PromptResult]):
    from rich.table import Table
    from rich.text import Text

    table = Table(title="prompts", title_justify="left", expand=True, show_lines=False)
    table.add_column("id", no_wrap=True, overflow="fold")
    table.add_column("category", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("answer", ratio=2, overflow="fold")
    table.add_column("why", ratio=3, overflow="fold")
    for p in prompts:
        if p.answer is None:
            answer = Text("(no answer)", style="italic dim")
        else:
            answer = Text(repr("") if not p.answer.strip() else truncate(p.answer))
        why = Text()
        if p.error:
            why.append(f"error: {truncate(p.error, 200)}", style=STATUS_STYLE[Status.ERROR])
        for s in problem_signals(p):
            if why:
                why.append("\n")
            why.append(f"{s.probe}: ", style=STATUS_STYLE[s.status])
            why.append(s.reason)
        table.add_row(Text(p.id), Text(p.category), _status_text(p.status), answer, why)
    return table


def _signal_table(signals: list[Signal]):
    from rich.table import Table
    from rich.text import Text

    table = Table(title="checkpoint signals", title_justify="left", expand=True)
    table.add_column("probe", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("reason", ratio=1, overflow="fold")
    for s in signals:
        score = "" if s.score is None else f"{s.score:.2f}"
        table.add_row(Text(s.probe), _status_text(s.status), score, Text(s.reason))
    return table


def _fingerprint_text(fingerprint: dict[str, Any]):
    from rich.text import Text

    line = Text("fingerprint ", style="dim")
    fields = fingerprint_summary(fingerprint)
    if not fields:
        line.append("(none recorded)", style="italic dim")
    for i, (label, value) in enumerate(fields):
        if i:
            line.append(" · ", style="dim")
        line.append(f"{label} ", style="dim")
        line.append(value)
    return line


def render_baseline(cmp: BaselineComparison, console) -> None:
    """The before/after table and the fingerprint differences, on a Rich console."""
    from rich.table import Table
    from rich.text import Text

    from vibes_eval.report.terminal import STATUS_STYLE

    fmt = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
    table = Table(title=f"against the baseline {cmp.checkpoint}", title_justify="left", expand=True)
    for col in ("signal", "before", "after", "change", "regression when it", "status"):
        table.add_column(col, justify="right" if col in ("before", "after", "change") else "left")
    for r in cmp.rows:
        table.add_row(Text(r.name), fmt(r.before), fmt(r.after), r.change, r.tolerance or "(not gated)",
                      Text(r.status.value.upper(), style=STATUS_STYLE[r.status]))
    console.print(table)
    if cmp.prompts:
        line = Text("prompts changed: ", style="dim")
        line.append(", ".join(f"{c.id} {_s(c.before)} -> {_s(c.after)}" for c in cmp.prompts))
        console.print(line)
    if cmp.fingerprint:
        fp = Table(title="fingerprint differences", title_justify="left", expand=True)
        for col in ("field", "baseline", "now"):
            fp.add_column(col, overflow="fold")
        for c in cmp.fingerprint:
            fp.add_row(Text(c.key), Text(c.before or "—"), Text(c.after or "—"))
        console.print(fp)
    if not cmp.same_suite:
        console.print(Text("(the baseline ran another suite: only prompts with the same id are compared)", style="yellow"))


def _s(status: Status | None) -> str:
    return "absent" if status is None else status.value
