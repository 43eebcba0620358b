"""Several saved scorecards side by side: the rows that line them up, and the terminal table.

Reads scorecard.json files only (pydantic, rich, jinja2), so `vibes-eval compare` runs where
torch cannot be imported: compare on a laptop or in CI the reports a GPU box left behind.
`load_reports`, `column_labels`, `prompt_rows`, `fingerprint_diff`, `verdict_rows`,
`signal_rows`: plain records that the terminal table (`render_compare`, here) and the HTML page
(vibes_eval.report.compare_html) both render. A row *differs* when its checkpoints disagree;
within such a row the *odd* cells are those that differ from the most common value (ties go to
the leftmost column), so with two checkpoints the second column is the one highlighted.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vibes_eval.errors import CompareError
from vibes_eval.records import PromptResult, Scorecard, Signal, load_scorecard
from vibes_eval.report.terminal import STATUS_STYLE, status_counts, terminal_safe, truncate
from vibes_eval.safety import strip_control

__all__ = [
    "HEADLINE_KEYS",
    "MAX_SCORECARD_BYTES",
    "CompareError",
    "PromptRow",
    "SignalRow",
    "ValueRow",
    "column_labels",
    "fingerprint_diff",
    "is_headline",
    "load_reports",
    "prompt_rows",
    "render_compare",
    "report_dir",
    "signal_rows",
    "verdict_rows",
    "worst_exit_code",
]

MAX_SCORECARD_BYTES = 64 << 20
"""A scorecard.json larger than this is refused before it is read."""
HEADLINE_KEYS = ("architecture", "loader", "template", "template_source", "dtype", "device", "visual_tokens", "rendered_prompt")
HEADLINE_PREFIXES = ("projector.", "parameters.", "versions.")
"""Fingerprint keys listed first, in this order (then `weights`, then the rest as first seen)."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt id across checkpoints; a cell is None where that run has no such prompt."""

    id: str
    cells: tuple[PromptResult | None, ...]
    differs: bool
    odd: tuple[bool, ...]

    @property
    def first(self) -> PromptResult:
        """The prompt as the leftmost run that has it asked it (category, question, image)."""
        return next(c for c in self.cells if c is not None)


@dataclass(frozen=True)
class ValueRow:
    """One verdict or fingerprint field across checkpoints, as text; None where a run lacks it."""

    key: str
    values: tuple[str | None, ...]
    differs: bool
    odd: tuple[bool, ...]


@dataclass(frozen=True)
class SignalRow:
    """One checkpoint-level probe across checkpoints; differs when the statuses do."""

    probe: str
    cells: tuple[Signal | None, ...]
    differs: bool
    odd: tuple[bool, ...]


# ---------------------------------------------------------------- reading


def load_reports(paths) -> list[Scorecard]:
    """Read one scorecard per path (a report folder or a scorecard.json).

    Raises:
        CompareError: one line naming the file: `r1: not found` (no such path), `r1/scorecard.json:
            not found` (a folder without one), `...: not a scorecard: <field>: <problem>`.
    """
    out = []
    for given in paths:
        path = Path(given)
        file = path / "scorecard.json" if path.is_dir() else path
        if not file.is_file():
            raise CompareError(f"{file}: not found")
        if file.stat().st_size > MAX_SCORECARD_BYTES:  # a scorecard is kilobytes; a crafted one must not fill memory
            raise CompareError(f"{file}: {file.stat().st_size:,} bytes is not a scorecard (at most {MAX_SCORECARD_BYTES:,})")
        try:
            out.append(load_scorecard(file))
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(part) for part in err["loc"])
            raise CompareError(f"{file}: not a scorecard: {field + ': ' if field else ''}{err['msg']}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CompareError(f"{file}: cannot read: {e}") from None
    return out


def worst_exit_code(scorecards: list[Scorecard]) -> int:
    """The worst gate result: 3 could not evaluate > 1 gate failed > 0 passed."""
    return max((sc.verdict.exit_code for sc in scorecards), default=0)


def column_labels(scorecards: list[Scorecard], sources=None) -> list[str]:
    """One column title per scorecard: the checkpoint folder's name, made unique.

    Args:
        scorecards: The runs, in column order.
        sources: The report paths they were read from; a duplicated name gets its report folder
            appended (`ckpt (ckpt-20250102-0304)`). Without sources, its parent folder is prefixed.

    Returns:
        Labels in the same order; any still alike get ` #1`, ` #2`.
    """
    names = [Path(sc.checkpoint).name or sc.checkpoint or "checkpoint" for sc in scorecards]
    dup = Counter(names)
    if sources is not None:
        reports = [report_dir(Path(s)).name for s in sources]
        names = [f"{n} ({r})" if dup[n] > 1 and r else n for n, r in zip(names, reports)]
    else:
        parents = [Path(sc.checkpoint).parent.name for sc in scorecards]
        names = [f"{p}/{n}" if dup[n] > 1 and p else n for n, p in zip(names, parents)]
    dup, seen, out = Counter(names), Counter(), []
    for n in names:
        seen[n] += 1
        out.append(f"{n} #{seen[n]}" if dup[n] > 1 else n)
    return out


def report_dir(path: Path) -> Path:
    return path.parent if path.is_file() else path


# ---------------------------------------------------------------- rows


def _spread(keys: list[Any]) -> tuple[bool, tuple[bool, ...]]:
    counts = Counter(keys)
    if len(counts) <= 1:
        return False, (False,) * len(keys)
    top = max(counts.values())
    majority = next(k for k in keys if counts[k] == top)
    return True, tuple(k != majority for k in keys)


def _normalized(answer: str | None) -> str | None:
    # "Red." and "red" are the same answer; the model's casing and final stop are not a regression
    return None if answer is None else " ".join(answer.casefold().split()).strip(" .,;:!?\"'")


def prompt_rows(scorecards: list[Scorecard], only_diff: bool = False) -> list[PromptRow]:
    """One row per prompt id: the first run's order, then ids only later runs have.

    A row differs when the statuses or the normalized answers (case, spacing and surrounding
    punctuation ignored) differ, or when some run lacks the prompt. `only_diff` keeps those.
    """
    by_run = [{p.id: p for p in reversed(sc.prompts)} for sc in scorecards]  # first occurrence wins
    ids = list(dict.fromkeys(p.id for sc in scorecards for p in sc.prompts))
    rows = []
    for pid in ids:
        cells = tuple(run.get(pid) for run in by_run)
        keys = [None if c is None else (c.status, _normalized(c.answer)) for c in cells]
        differs, odd = _spread(keys)
        if differs or not only_diff:
            rows.append(PromptRow(pid, cells, differs, odd))
    return rows


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def _weights_summary(files: dict[str, Any]) -> str:
    # Per-file hashes are many long rows nobody reads; one digest says "same weights or not".
    if not files:
        return "no weight files"
    digest = hashlib.sha256(json.dumps(sorted(files.items()), default=str).encode()).hexdigest()[:12]
    return f"{len(files)} file{'s' if len(files) != 1 else ''}, digest {digest}"


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key == "weights" and isinstance(v, dict):
            out[key] = _weights_summary(v)
        elif isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = _text(v)
    return out


def _key_rank(key: str) -> int:
    if key in HEADLINE_KEYS:
        return HEADLINE_KEYS.index(key)
    for i, prefix in enumerate(HEADLINE_PREFIXES):
        if key.startswith(prefix):
            return len(HEADLINE_KEYS) + i
    return len(HEADLINE_KEYS) + len(HEADLINE_PREFIXES) + (0 if key == "weights" else 1)


def is_headline(key: str) -> bool:
    return _key_rank(key) < len(HEADLINE_KEYS) + len(HEADLINE_PREFIXES)


def fingerprint_diff(scorecards: list[Scorecard], only_diff: bool = False) -> list[ValueRow]:
    """The fingerprints flattened to dotted keys (`projector.norm_ratio`), one row per key.

    Headline keys come first (architecture, loader, template, template_source, dtype, device,
    visual_tokens, rendered_prompt, projector.*, parameters.*, versions.*), then `weights` (the
    per-file hashes summarised as one digest), then the rest as first seen. Values are text
    (JSON for non-strings); None where a run lacks the key.
    """
    flat = [_flatten(sc.fingerprint) for sc in scorecards]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    keys.sort(key=_key_rank)  # stable: first-seen order within each group
    rows = []
    for key in keys:
        values = tuple(f.get(key) for f in flat)
        differs, odd = _spread(list(values))
        if differs or not only_diff:
            rows.append(ValueRow(key, values, differs, odd))
    return rows


def verdict_rows(scorecards: list[Scorecard]) -> list[ValueRow]:
    """verdict, exit code, diagnoses, prompt counts and suite (name and sha256) per checkpoint."""
    fields = {
        "verdict": [sc.verdict.status.value.upper() for sc in scorecards],
        "exit code": [str(sc.verdict.exit_code) for sc in scorecards],
        "diagnoses": [", ".join(sc.verdict.diagnoses) or "none" for sc in scorecards],
        "prompts": [status_counts(sc.prompts) for sc in scorecards],
        "suite": [f"{sc.suite.get('name') or sc.suite.get('path') or '?'} {str(sc.suite.get('sha256', ''))[:12]}".strip()
                  for sc in scorecards],
    }
    return [ValueRow(k, tuple(v), *_spread(v)) for k, v in fields.items()]


def signal_rows(scorecards: list[Scorecard], only_diff: bool = False) -> list[SignalRow]:
    """One row per checkpoint-level probe (a repeated probe name gets `#2`); differs on status."""
    runs = []
    for sc in scorecards:
        named: dict[str, Signal] = {}
        seen: Counter[str] = Counter()
        for s in sc.signals:
            seen[s.probe] += 1
            named[s.probe if seen[s.probe] == 1 else f"{s.probe} #{seen[s.probe]}"] = s
        runs.append(named)
    rows = []
    for probe in dict.fromkeys(k for run in runs for k in run):
        cells = tuple(run.get(probe) for run in runs)
        differs, odd = _spread([None if c is None else c.status for c in cells])
        if differs or not only_diff:
            rows.append(SignalRow(probe, cells, differs, odd))
    return rows

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
