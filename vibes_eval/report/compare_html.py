"""The HTML page of `vibes-eval compare`: one self-contained file (inline CSS, data: thumbnails, no script).

Rows come from vibes_eval.report.compare; the page shares the scorecard report's jinja environment
(autoescape, URL-free and bidi-isolating finalize). Thumbnails are embedded only from inside a
report's own folder or its recorded suite's folder (report/thumbs.safe_thumbnail).
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.records import Scorecard, worst

__all__ = ["render_compare_html", "write_compare_html"]


def render_compare_html(scorecards: list[Scorecard], only_diff: bool = False, *, labels=None, thumbnails: bool = True,
                        sources=None) -> str:
    """The comparison as one self-contained HTML string (see `write_compare_html`)."""
    from vibes_eval.report.compare import (
        column_labels,
        fingerprint_diff,
        prompt_rows,
        signal_rows,
        verdict_rows,
        worst_exit_code,
    )
    from vibes_eval.report.html import (
        _environment,  # its autoescape + URL-free finalize, shared
    )
    from vibes_eval.report.thumbs import allowed_roots

    labels = labels or column_labels(scorecards)
    rows = prompt_rows(scorecards)
    shown = [r for r in rows if r.differs or not only_diff]
    # scorecards read from files (`sources`) are data anyone can craft: their images only from their own
    # or their suite's folder; scorecards handed over in memory are the caller's own
    roots = [allowed_roots(sc, src) for sc, src in zip(scorecards, sources)] if sources is not None else None
    return _environment().get_template("compare.html.j2").render(
        scorecards=scorecards,
        labels=labels,
        worst=worst(sc.verdict.status for sc in scorecards),
        exit_code=worst_exit_code(scorecards),
        verdict_rows=verdict_rows(scorecards),
        prompts=[{"row": r, "thumb": _thumb(r, roots) if thumbnails else None} for r in shown],
        prompt_total=len(rows),
        prompt_differing=sum(r.differs for r in rows),
        fingerprint_rows=fingerprint_diff(scorecards, only_diff),
        signal_rows=signal_rows(scorecards, only_diff),
        only_diff=only_diff,
    )


def _thumb(row, roots):
    from vibes_eval.report.thumbs import make_thumbnail, safe_thumbnail

    if roots is None:
        return make_thumbnail(row.first.image_path)
    return safe_thumbnail(row.first.image_path, roots[next(i for i, c in enumerate(row.cells) if c is not None)])


def write_compare_html(
    scorecards: list[Scorecard], path, only_diff: bool = False, *, labels=None, thumbnails: bool = True, sources=None
) -> Path:
    """Write the comparison to `path` (parent folders created): inline CSS, data: thumbnails, no script, no URL.

    Args:
        scorecards: The runs, one column each.
        path: Where the `.html` file goes.
        only_diff: Keep only the prompts, fingerprint fields and signals that differ.
        labels: Column titles (default: `column_labels(scorecards)`).
        thumbnails: Embed each prompt's image when still there, inside its report's folder (`sources`,
            the report paths read) or its recorded suite's folder; anything else is a placeholder.

    Returns:
        The path written (atomically: a temporary name, then renamed).
    """
    from vibes_eval.report.atomic import write_atomic

    html = render_compare_html(scorecards, only_diff, labels=labels, thumbnails=thumbnails, sources=sources)
    return write_atomic(path, html)
