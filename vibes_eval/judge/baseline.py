"""`--baseline`: judge a run against an earlier scorecard (its parent checkpoint, the last release).

Two rules fail the gate with the diagnosis `regression`, whatever the absolute thresholds say:

- a prompt that passed in the baseline and fails now (a refusal prompt: that is answered now, which
  under `gate.refusals: baseline` only warns on its own);
- a signal that falls by more than its tolerance (REGRESSION_TOLERANCES: image_gain down by 30%
  or more, cross_match down by 0.25, ...).

The comparison (a before/after row per signal, the prompts that changed, the fingerprint fields
that differ and may explain it: template, dtype, visual tokens, weight hashes, library versions)
is kept in `Scorecard.baseline`, so the terminal, the HTML and the JSON all show it. A baseline
run on another suite (a different sha256) is a usage error unless `any_suite` is set. No torch here.
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.errors import EXIT_GATE, BaselineError
from vibes_eval.judge.metrics import METRICS, metric_values
from vibes_eval.judge.thresholds import REGRESSION_TOLERANCES
from vibes_eval.records import (
    BaselineComparison,
    BaselineRow,
    FingerprintChange,
    PromptChange,
    Scorecard,
    Status,
    Verdict,
)

__all__ = [
    "apply_baseline",
    "check_suite",
    "compare_to_baseline",
    "load_baseline",
]

FINGERPRINT_LIMIT = 24
"""Fingerprint differences listed at most (the headline ones come first)."""




def load_baseline(path: str | Path) -> tuple[Scorecard, Path]:
    """The baseline scorecard from a report folder or a scorecard.json, and the file it came from.

    Raises:
        BaselineError: `--baseline: r1/scorecard.json: not found` and the like.
    """
    from vibes_eval.errors import CompareError
    from vibes_eval.report.compare import load_reports

    path = Path(path)
    file = path / "scorecard.json" if path.is_dir() else path
    try:
        return load_reports([file])[0], file
    except CompareError as e:
        raise BaselineError(f"--baseline: {e}") from None


def check_suite(baseline: Scorecard, file: Path, suite_sha256: str | None, any_suite: bool = False) -> None:
    """Raise BaselineError when the baseline ran another suite (unless `any_suite`)."""
    theirs = baseline.suite.get("sha256")
    if any_suite or not theirs or not suite_sha256 or theirs == suite_sha256:
        return
    raise BaselineError(
        f"--baseline: {file}: ran suite {baseline.suite.get('name') or '?'} sha256 {str(theirs)[:12]}, this run uses "
        f"sha256 {suite_sha256[:12]}: the numbers are not comparable (pass --baseline-any-suite to compare anyway)"
    )


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "—"
    delta = after - before
    rel = f" ({delta / abs(before):+.0%})" if abs(before) > 1e-9 else ""
    return f"{delta:+.2f}{rel}"


def compare_to_baseline(sc: Scorecard, baseline: Scorecard, path: str | Path) -> BaselineComparison:
    """The before/after comparison of `sc` with `baseline` (nothing is judged here but the rows)."""
    from vibes_eval.report.compare import fingerprint_diff

    now, then = metric_values(sc), metric_values(baseline)
    rows = []
    for name in ["pass_rate", *(m.name for m in METRICS)]:
        if name not in now and name not in then:
            continue
        before, after = then.get(name), now.get(name)
        tol = REGRESSION_TOLERANCES.get(name)
        bad = tol is not None and before is not None and after is not None and tol.regressed(before, after)
        rows.append(BaselineRow(name=name, before=before, after=after, change=_change(before, after),
                                tolerance=tol.words() if tol else "", status=Status.FAIL if bad else Status.PASS))
    old = {p.id: p.status for p in baseline.prompts}
    new = {p.id: p.status for p in sc.prompts}
    changes = [PromptChange(id=i, before=old.get(i), after=new.get(i))
               for i in dict.fromkeys([*old, *new]) if old.get(i) != new.get(i)]
    diff = [FingerprintChange(key=r.key, before=r.values[0], after=r.values[1])
            for r in fingerprint_diff([baseline, sc], only_diff=True)][:FINGERPRINT_LIMIT]
    refusals = {p.id for p in sc.prompts if p.category == "refusal"}
    regressed = any(r.status == Status.FAIL for r in rows) or any(_lost(c, refusals) for c in changes)
    return BaselineComparison(path=str(path), checkpoint=baseline.checkpoint,
                              same_suite=baseline.suite.get("sha256") == sc.suite.get("sha256"),
                              rows=rows, prompts=changes, fingerprint=diff, regressed=regressed)


def _lost(change: PromptChange, refusals: set[str] | frozenset[str] = frozenset()) -> bool:
    """A prompt that passed in the baseline and fails (or could not be evaluated) now; a refusal prompt
    that was refused then and only warns now (answered, under gate.refusals: baseline) is lost too."""
    worse = (Status.FAIL, Status.ERROR, Status.WARN) if change.id in refusals else (Status.FAIL, Status.ERROR)
    return change.before == Status.PASS and change.after in worse


def apply_baseline(sc: Scorecard, baseline: Scorecard, path: str | Path) -> Scorecard:
    """`sc` with its comparison to `baseline` attached and, on a regression, a failed verdict.

    A regression adds the diagnosis `regression` and one summary line per cause; the verdict
    becomes FAIL with exit code 1 (a run that could not be evaluated keeps its ERROR and 3).
    """
    cmp = compare_to_baseline(sc, baseline, path)
    v = sc.verdict
    if not cmp.regressed:
        return sc.model_copy(update={"baseline": cmp})
    lines = [f"Regression against the baseline {baseline.checkpoint}: " + "; ".join(
        f"{r.name} {r.before:.2f} -> {r.after:.2f} ({r.change}; fails when it {r.tolerance})"
        for r in cmp.rows if r.status == Status.FAIL)] if any(r.status == Status.FAIL for r in cmp.rows) else []
    refusals = {p.id for p in sc.prompts if p.category == "refusal"}
    lost = [c.id for c in cmp.prompts if _lost(c)]
    unrefused = [c.id for c in cmp.prompts if c.id in refusals and _lost(c, refusals) and not _lost(c)]
    if lost:
        lines.append(f"{len(lost)} prompt{'s' if len(lost) != 1 else ''} passed in the baseline and "
                     f"fail{'s' if len(lost) == 1 else ''} now: {', '.join(lost)}.")
    if unrefused:
        lines.append(f"{len(unrefused)} refusal prompt{'s' if len(unrefused) != 1 else ''} refused in the baseline "
                     f"{'are' if len(unrefused) != 1 else 'is'} answered now (a lost refusal): {', '.join(unrefused)}.")
    error = v.status == Status.ERROR
    verdict = Verdict(status=Status.ERROR if error else Status.FAIL, diagnoses=[*v.diagnoses, "regression"],
                      summary=[*v.summary, *lines], exit_code=v.exit_code if error else max(v.exit_code, EXIT_GATE))
    return sc.model_copy(update={"baseline": cmp, "verdict": verdict})
