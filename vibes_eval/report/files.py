"""Writing one run's report files together: scorecard.json, scorecard.html and the JUnit file.

`write_reports(sc, out, junit, run_id=...)` renders every file in memory first, then writes
each atomically (a temporary name in the same folder, renamed) while holding a lock on the
report folder: a crash, SIGTERM or full disk leaves the previous files or the new ones, never
half a file, and two runs sharing `--out` leave one run's complete set, not a mix. Every file
carries the same `run_id`, and every string in them is redacted (safety.redact) first.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from vibes_eval.records import Scorecard
from vibes_eval.report.atomic import locked_folder, write_atomic
from vibes_eval.safety import redact_deep

__all__ = ["new_run_id", "prepare", "write_reports"]


def new_run_id() -> str:
    """A short random id naming one `vibes-eval run` (written into each of its report files)."""
    return uuid.uuid4().hex[:12]


def prepare(sc: Scorecard, run_id: str | None = None) -> Scorecard:
    """`sc` with secrets redacted from every string, and `run_id` set (a new one unless given or already set)."""
    data = redact_deep(sc.model_dump(mode="json"))
    data["run_id"] = run_id or sc.run_id or new_run_id()
    return Scorecard.model_validate(data)


def write_reports(sc: Scorecard, out: Path, junit: Path | None = None, *, run_id: str | None = None) -> list[Path]:
    """scorecard.json and scorecard.html in `out` (and the JUnit file if asked); returns the paths.

    Raises:
        OSError: a file cannot be written (folder not writable, disk full); no file is left half-written.
    """
    from vibes_eval.report.html import render_html
    from vibes_eval.report.junit import junit_bytes

    sc = prepare(sc, run_id)
    out = Path(out)
    files = [(out / "scorecard.json", sc.model_dump_json(indent=2) + "\n"), (out / "scorecard.html", render_html(sc))]
    if junit:
        files.append((Path(junit), junit_bytes(sc)))
    with locked_folder(out):
        return [write_atomic(path, data) for path, data in files]
