"""CI summaries: a scorecard as Markdown, and GitHub Actions workflow commands for its diagnoses.

With `GITHUB_STEP_SUMMARY` set (GitHub Actions sets it for every step), `run` and `watch` append
the Markdown to that file and print `::error::` / `::warning::` lines, which GitHub shows as
annotations on the job. `--summary-md FILE` writes the same Markdown anywhere (GitLab, Buildkite).
No thumbnails, no URLs from the model: every cell is escaped and bounded. No torch here.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from vibes_eval.records import Scorecard, Status
from vibes_eval.safety import redact, strip_control

__all__ = ["emit_summaries", "markdown_cell", "scorecard_markdown", "workflow_commands"]

_CELL = 120
_ICON = {Status.PASS: "✅", Status.WARN: "⚠️", Status.FAIL: "❌", Status.ERROR: "💥", Status.SKIP: "⏭️"}


def markdown_cell(text: object, limit: int = _CELL) -> str:
    """One Markdown table cell: one line, no control characters, HTML escaped, `|` escaped, bounded."""
    flat = " ".join(strip_control(redact(str(text)), newlines=False).split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    # "://" broken so a model's link is not rendered as one
    return html.escape(flat, quote=False).replace("|", "\\|").replace("://", ":&#47;&#47;") or " "


_cell = markdown_cell  # the short name the tables below use


def scorecard_markdown(sc: Scorecard, report: str | None = None) -> str:
    """The scorecard as Markdown: verdict, diagnoses, summary, the per-prompt table, the baseline table."""
    v = sc.verdict
    suite = sc.suite.get("name") or sc.suite.get("path") or "?"
    passed = sum(p.status == Status.PASS for p in sc.prompts)
    out = [f"### {_ICON[v.status]} vibes-eval {v.status.value.upper()}: `{_cell(sc.checkpoint, 200).replace('`', '')}`", "",
           f"exit code **{v.exit_code}** · suite {_cell(suite)} · {passed}/{len(sc.prompts)} prompts passed · {sc.seconds:.1f} s"]
    if v.diagnoses:
        out.append(f"\n**Diagnoses:** {', '.join(f'`{_cell(d)}`' for d in v.diagnoses)}")
    if v.summary:
        out.append("")
        out += [f"- {_cell(line, 400)}" for line in v.summary]
    if sc.prompts:
        out += ["", "| prompt | category | status | answer | why |", "|---|---|---|---|---|"]
        for p in sc.prompts:
            why = "; ".join(f"{s.probe}: {s.reason}" for s in p.signals if s.status in (Status.WARN, Status.FAIL, Status.ERROR))
            answer = "(no answer)" if p.answer is None else p.answer
            out.append(f"| {_cell(p.id)} | {_cell(p.category)} | {_ICON[p.status]} {p.status.value} | {_cell(answer, 80)} | "
                       f"{_cell(p.error or why)} |")
    if sc.baseline is not None:
        b = sc.baseline
        out += ["", f"**Against the baseline** `{_cell(b.checkpoint, 200).replace('`', '')}`", "",
                "| signal | before | after | change | regression when it | status |", "|---|---:|---:|---:|---|---|"]
        num = lambda x: "—" if x is None else f"{x:.3f}"  # noqa: E731
        for r in b.rows:
            out.append(f"| {_cell(r.name)} | {num(r.before)} | {num(r.after)} | {_cell(r.change)} | "
                       f"{_cell(r.tolerance or '(not gated)')} | {_ICON[r.status]} {r.status.value} |")
        if b.fingerprint:
            out += ["", "| fingerprint field | baseline | now |", "|---|---|---|"]
            out += [f"| {_cell(c.key)} | {_cell(c.before or '—')} | {_cell(c.after or '—')} |" for c in b.fingerprint]
    if report:
        out += ["", f"Report: `{_cell(report, 300).replace('`', '')}`"]
    return "\n".join(out) + "\n\n"


def _escape_data(text: str) -> str:
    # the workflow-command escapes: a newline would end the command, % starts an escape
    return strip_control(redact(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"), newlines=False)


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(sc: Scorecard) -> list[str]:
    """`::error::` per diagnosis of a failed (or unevaluable) run, `::warning::` for a run that passed with them.

    A failed gate without a diagnosis (too many failing prompts) is one `::error::` with the gate's line.
    """
    v = sc.verdict
    level = "error" if v.status in (Status.FAIL, Status.ERROR) else "warning"
    detail = " ".join(v.summary)[:1000]
    lines = [f"::{level} title={_escape_property(f'vibes-eval {d}')}::{_escape_data(f'{sc.checkpoint}: {d}. {detail}')}"
             for d in v.diagnoses]
    if not lines and v.status in (Status.FAIL, Status.ERROR, Status.WARN):
        last = v.summary[-1] if v.summary else v.status.value
        lines.append(f"::{level} title=vibes-eval {v.status.value}::{_escape_data(f'{sc.checkpoint}: {last}')}")
    return lines


def emit_summaries(sc: Scorecard, summary_md: Path | None = None, report: str | Path | None = None, print_fn=print) -> None:
    """Append the Markdown to $GITHUB_STEP_SUMMARY (and print the workflow commands) and/or `summary_md`.

    `summary_md` is appended to as well, so a `watch` or a multi-checkpoint run keeps every section.
    """
    text = scorecard_markdown(sc, str(report) if report else None)
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    targets = [Path(t) for t in (step, summary_md) if t]
    for target in dict.fromkeys(targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as f:
            f.write(text)
    if step:
        for line in workflow_commands(sc):
            print_fn(line)

