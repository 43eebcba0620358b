"""The trend of a training run: one entry per evaluated step, `trend.json` and a self-contained `trend.html`.

Entries come from saved scorecards (`vibes-eval watch` writes `OUTPUT_DIR/vibes/checkpoint-N/`,
the Trainer callback `checkpoint-N/vibes/` or `vibes/step-N/`), so `vibes-eval trend DIR`
rebuilds both files from the reports alone, without torch. Entries already in an existing
trend.json whose scorecard is gone (a trainer's `save_total_limit` deletes old checkpoints) are kept.

The HTML is one file: inline CSS, inline SVG line plots (each signal against the step, its
threshold dashed, each point coloured by that step's verdict), no script, no URL but the
relative links to each step's scorecard.html.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from vibes_eval.judge.metrics import METRICS, metric_values, threshold_of
from vibes_eval.records import Scorecard, load_scorecard
from vibes_eval.report.atomic import write_atomic

__all__ = ["STEP_DIR", "TREND_SCHEMA", "collect_entries", "entry_for", "render_trend_html", "write_trend"]

TREND_SCHEMA = 1
STEP_DIR = re.compile(r"^(?:checkpoint|step)-(\d+)$")
"""Folder names that carry a step: `checkpoint-500` (a Trainer checkpoint), `step-500` (a callback check)."""
_MAX_SCAN = 100_000  # folders looked at, at most, when collecting scorecards
_W, _H, _PAD_L, _PAD_R, _PAD_T, _PAD_B = 420, 170, 52, 14, 14, 28
_COLOR = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "error": "#8250df", "skip": "#6e7781"}


def step_of(path: Path) -> int | None:
    """The step named by the nearest `checkpoint-N` / `step-N` folder in `path`, or None."""
    for part in reversed(Path(path).parts):
        m = STEP_DIR.match(part)
        if m:
            return int(m.group(1))
    return None


def entry_for(sc: Scorecard, step: int, scorecard_json: Path, base: Path) -> dict[str, Any]:
    """One trend entry: the step's verdict, metrics, thresholds and links relative to `base`."""
    html = scorecard_json.with_name("scorecard.html")
    rel = lambda p: os.path.relpath(p, base).replace(os.sep, "/")  # noqa: E731
    return {
        "step": step,
        "checkpoint": sc.checkpoint,
        "status": sc.verdict.status.value,
        "exit_code": sc.verdict.exit_code,
        "diagnoses": list(sc.verdict.diagnoses),
        "summary": list(sc.verdict.summary)[:6],
        "metrics": metric_values(sc),
        "thresholds": {m.name: t for m in METRICS if (t := threshold_of(sc, m)) is not None},
        "scorecard": rel(scorecard_json),
        "html": rel(html) if html.is_file() else None,
        "created": sc.created,
        "seconds": sc.seconds,
    }


def collect_entries(root: Path, base: Path | None = None) -> list[dict[str, Any]]:
    """Entries for every saved scorecard under `root` whose folders name a step, sorted by step.

    `root/vibes/{checkpoint,step}-N/scorecard.json` and `root/checkpoint-N/vibes/scorecard.json`;
    where two exist for one step the newer (`created`) wins. Entries of `base/trend.json`
    (default `root/vibes`) whose step has no scorecard any more are kept.
    """
    root = Path(root)
    base = Path(base) if base else root / "vibes"
    found: dict[int, dict[str, Any]] = {}
    candidates = []
    for d in _limited(root, root / "vibes"):
        candidates += [d / "scorecard.json", d / "vibes" / "scorecard.json"]
    for file in candidates:
        step = step_of(file.parent if file.parent.name != "vibes" else file.parent.parent)
        if step is None or not file.is_file():
            continue
        try:
            sc = load_scorecard(file)
        except (OSError, ValueError):  # a half-written or foreign file: not a step of this run
            continue
        entry = entry_for(sc, step, file, base)
        if step not in found or entry["created"] >= found[step]["created"]:
            found[step] = entry
    for old in read_trend(base / "trend.json"):
        if _valid(old) and old["step"] not in found:
            found[old["step"]] = old
    return [found[s] for s in sorted(found)]


def _valid(entry: Any) -> bool:
    """An entry of an earlier trend.json worth keeping: the fields the page reads, of the right types."""
    if not isinstance(entry, dict) or not isinstance(entry.get("step"), int) or entry.get("status") not in _COLOR:
        return False
    numbers = lambda d: isinstance(d, dict) and all(isinstance(v, (int, float)) for v in d.values())  # noqa: E731
    return (isinstance(entry.get("exit_code"), int) and numbers(entry.get("metrics")) and numbers(entry.get("thresholds"))
            and isinstance(entry.get("diagnoses"), list) and isinstance(entry.get("summary"), list)
            and isinstance(entry.get("scorecard"), str) and isinstance(entry.get("html"), (str, type(None))))


def _limited(*folders: Path):
    n = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for d in sorted(folder.iterdir()):
            n += 1
            if n > _MAX_SCAN:
                return
            if d.is_dir() and STEP_DIR.match(d.name):
                yield d


def read_trend(path: Path) -> list[dict[str, Any]]:
    """The entries of a trend.json ([] when there is none or it cannot be read)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, list) else []


def write_trend(entries: list[dict[str, Any]], out: Path, title: str = "") -> tuple[Path, Path]:
    """Write `out/trend.json` and `out/trend.html` (atomically); return both paths."""
    out = Path(out)
    worst = max((e.get("exit_code", 0) for e in entries), default=0)
    data = {"schema": TREND_SCHEMA, "title": title, "worst_exit_code": worst, "entries": entries}
    write_atomic(out / "trend.json", json.dumps(data, indent=2) + "\n")
    write_atomic(out / "trend.html", render_trend_html(entries, title))
    return out / "trend.json", out / "trend.html"


# ---------------------------------------------------------------- the page


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _plot(name: str, label: str, entries: list[dict[str, Any]], higher_is_better: bool) -> dict[str, Any] | None:
    """One metric's SVG geometry: line segments, points, threshold line, axis labels."""
    pts = [(e["step"], e["metrics"][name], e["status"]) for e in entries if name in e.get("metrics", {})]
    if not pts:
        return None
    thresholds = [e["thresholds"][name] for e in entries if name in e.get("thresholds", {})]
    threshold = thresholds[-1] if thresholds else None
    ys = [p[1] for p in pts] + ([threshold] if threshold is not None else [])
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 0.05)
    lo, hi = lo - pad, hi + pad
    steps = [e["step"] for e in entries]
    s0, s1 = min(steps), max(steps)
    if s0 == s1:
        s0, s1 = s0 - 1, s1 + 1
    x = _scale(s0, s1, _PAD_L, _W - _PAD_R)
    y = _scale(lo, hi, _H - _PAD_B, _PAD_T)
    segments, current, by_step = [], [], {p[0]: p for p in pts}
    for e in entries:  # a step without this metric breaks the line
        p = by_step.get(e["step"])
        if p is None:
            if len(current) > 1:
                segments.append(current)
            current = []
        else:
            current.append(f"{x(p[0]):.1f},{y(p[1]):.1f}")
    if len(current) > 1:
        segments.append(current)
    points = [{"x": round(x(s), 1), "y": round(y(v), 1), "color": _COLOR.get(st, "#57606a"),
               "title": f"step {s}: {label} {v:.3f} ({st})"} for s, v, st in pts]
    thr = None
    if threshold is not None:
        thr = {"y": round(y(threshold), 1), "text": f"{'fails below' if higher_is_better else 'fails above'} {threshold:g}"}
    return {"name": name, "label": label, "w": _W, "h": _H, "segments": [" ".join(s) for s in segments], "points": points,
            "threshold": thr, "x0": _PAD_L, "x1": _W - _PAD_R, "y0": _H - _PAD_B, "y1": _PAD_T,
            "ticks_y": [(round(y(v), 1), f"{v:.2f}") for v in (lo + pad, hi - pad)],
            "ticks_x": _x_ticks(sorted(set(steps)), x)}


def _x_ticks(steps: list[int], x) -> list[tuple[float, str, str]]:
    """(x, label, text-anchor): every step when there are few, else the first and the last."""
    shown = steps if len(steps) <= 6 else [steps[0], steps[-1]]
    anchor = lambda i: "start" if i == 0 and len(shown) > 1 else "end" if i == len(shown) - 1 and len(shown) > 1 else "middle"  # noqa: E731
    return [(round(x(s), 1), str(s), anchor(i)) for i, s in enumerate(shown)]


def render_trend_html(entries: list[dict[str, Any]], title: str = "") -> str:
    """The trend page as one HTML string (see the module docstring)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    specs = [("pass_rate", "prompts passed (share)", True)] + [(m.name, m.label, m.higher_is_better) for m in METRICS]
    plots = [p for name, label, better in specs if (p := _plot(name, label, entries, better))]
    worst = max(entries, key=lambda e: (e.get("exit_code", 0), e["step"]), default=None)
    return env.get_template("trend.html.j2").render(title=title, entries=entries, plots=plots, worst=worst)
