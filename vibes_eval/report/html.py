"""The HTML report of a Scorecard: one self-contained file (inline CSS, data: thumbnails, no script).

The page must open from a CI artifact store or an air-gapped box exactly as it looked when it
was written, so nothing in it points outside the file: images are data URIs, a
Content-Security-Policy forbids any other load, and even text from the model that looks like a
URL is written with its slashes as entities (it reads the same, but `grep http://` stays empty).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from vibes_eval.records import PromptResult, Scorecard
from vibes_eval.report.atomic import write_atomic
from vibes_eval.report.terminal import fingerprint_summary, problem_signals, status_counts
from vibes_eval.report.thumbs import make_thumbnail
from vibes_eval.safety import bidi_isolate, redact

__all__ = ["render_html", "write_html"]

_TEMPLATES = Path(__file__).parent / "templates"


def write_html(scorecard: Scorecard, path: str | Path) -> Path:
    """Write the report of `scorecard` to `path` (parent folders created).

    Args:
        scorecard: The run to show.
        path: Where the `.html` file goes.

    Returns:
        The path written.
    """
    return write_atomic(path, render_html(scorecard))  # a temporary name, then renamed: never half a file


def render_html(scorecard: Scorecard) -> str:
    """The report of `scorecard` as one HTML string (see `write_html`)."""
    template = _environment().get_template("scorecard.html.j2")
    return template.render(
        sc=scorecard,
        suite_name=scorecard.suite.get("name") or scorecard.suite.get("path") or "?",
        counts=status_counts(scorecard.prompts),
        cards=[_card(p) for p in scorecard.prompts],
        fingerprint_line=fingerprint_summary(scorecard.fingerprint),
        fingerprint_rows=[(str(k), _fingerprint_value(v)) for k, v in scorecard.fingerprint.items()],
    )


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        finalize=_no_url,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _no_url(value: Any) -> Any:
    # Runs on every {{ expression }} before output: escape it as autoescape would, then write
    # "://" as ":&#47;&#47;" so a model that answers with a link adds no URL to the file; text
    # holding bidi controls is isolated (an unclosed RIGHT-TO-LEFT OVERRIDE in a folder name
    # must not reverse the rest of the line), and registered secrets are redacted.
    if isinstance(value, Markup):  # a macro's output: its own expressions went through here already
        return Markup(str(value).replace("://", ":&#47;&#47;"))
    if isinstance(value, str):
        return Markup(str(escape(bidi_isolate(redact(value)))).replace("://", ":&#47;&#47;"))
    return value


def _card(p: PromptResult) -> dict[str, Any]:
    problems = problem_signals(p)
    shown = {id(s) for s in problems}
    return {
        "p": p,
        "thumb": make_thumbnail(p.image_path),
        "problems": problems,
        "others": [s for s in p.signals if id(s) not in shown],
    }


def _fingerprint_value(value: Any) -> dict[str, Any]:
    """A scalar (or a list of one) shows as text; a dict or list as indented JSON in a <pre>."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and not isinstance(value[0], (dict, list, tuple)):
        value = value[0]
    if isinstance(value, (dict, list, tuple)):
        return {"pre": True, "text": _json(value)}
    return {"pre": False, "text": "—" if value is None else str(value)}


def _json(value: Any, indent: str = "") -> str:
    """Indented JSON, but a short list of scalars stays on one line ("shape": [1024, 4096])."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)) and value:
        flat = json.dumps(list(value), default=str, ensure_ascii=False)
        if len(flat) <= 80 and not any(isinstance(v, (dict, list, tuple)) for v in value):
            return flat
        return "[\n" + ",\n".join(inner + _json(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, default=str, ensure_ascii=False)
