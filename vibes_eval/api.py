"""The library entry point: `evaluate(checkpoint_or_adapter, suite, **options) -> Scorecard`.

    from vibes_eval.api import evaluate

    sc = evaluate("ckpt/")                      # the default suite for it, every probe on
    print(sc.verdict.status, sc.verdict.diagnoses)
    raise SystemExit(sc.verdict.exit_code)      # 0 passed, 1 gate failed, 3 not evaluated

The CLI's `run`, `demo`, `bench/` and the tests call this; it does what `vibes-eval run` does
for one checkpoint except writing files (`vibes_eval.run.write_reports(sc, folder)` does that).

Errors: a bad option or suite raises UsageError / SuiteError (nothing loaded). A checkpoint that
cannot be opened, or an evaluation that crashes, raises `EvaluationFailed` (a CheckpointError)
whose `.scorecard` records why: the report to write, as `run` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from vibes_eval.errors import EXIT_EVAL, CheckpointError, RemoteError, UsageError, one_line
from vibes_eval.loaders.base import Adapter, AdapterSpec
from vibes_eval.records import Scorecard, Status, Verdict
from vibes_eval.resources import default_suite
from vibes_eval.runner import Progress, run_suite
from vibes_eval.suite import Suite, load_suite
from vibes_eval.verdict import load_error_verdict

__all__ = ["EvaluationFailed", "error_scorecard", "evaluate", "resolve_suite"]


class EvaluationFailed(CheckpointError):
    """The checkpoint could not be evaluated (exit 3); `.scorecard` says why and holds what was computed."""

    def __init__(self, scorecard: Scorecard):
        super().__init__(scorecard.verdict.summary[0])
        self.scorecard = scorecard


def error_scorecard(label: str, suite: Suite, verdict: Verdict) -> Scorecard:
    """The scorecard of a checkpoint that could not be evaluated: the suite and the verdict, no prompts."""
    return Scorecard(
        checkpoint=label,
        suite={"name": suite.name, "path": str(suite.file), "sha256": suite.sha256},
        fingerprint={},
        prompts=[],
        verdict=verdict,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )


def resolve_suite(suite: Suite | str | Path | None, checkpoint: Path | None) -> Suite:
    """A loaded Suite from a Suite, a YAML path, or None (the bundled default for `checkpoint`)."""
    if isinstance(suite, Suite):
        return suite
    return load_suite(default_suite(checkpoint) if suite is None else suite)


def _token_problem(suite: Suite, detection) -> str | None:
    """The suite's max_new_tokens above the checkpoint's context (config.json), in one line; else None."""
    if detection is None:
        return None
    from vibes_eval.loaders.sanity import context_length

    found = context_length(detection.config)
    return suite.token_problem(found[0], f"the checkpoint's context ({found[1]})") if found else None


def _spec(target: str | Path | AdapterSpec, options: dict[str, Any]) -> AdapterSpec:
    if isinstance(target, AdapterSpec):
        if options:
            raise TypeError(f"evaluate: loader options ({', '.join(options)}) go into the AdapterSpec itself")
        return target
    return AdapterSpec(checkpoint=Path(target), **options)


def evaluate(
    checkpoint_or_adapter: str | Path | AdapterSpec | Adapter,
    suite: Suite | str | Path | None = None,
    *,
    grounding: bool = True,
    templates: bool = True,
    max_fail: int | None = None,
    max_warn: int | None = None,
    progress: Progress | None = None,
    loading: Callable[[str], AbstractContextManager] | None = None,
    tune_malloc: bool = False,
    label: str | None = None,
    **loader_options: Any,
) -> Scorecard:
    """Run `suite` on a checkpoint (or an open Adapter) and judge it; return the Scorecard.

    Args:
        checkpoint_or_adapter: a checkpoint folder, an AdapterSpec (a server, say), or an Adapter
            already open (it is not closed here).
        suite: a Suite, a suite YAML path, or None for the bundled default (shapes for a toy).
        grounding: ask the counterfactual variants and score the references (off: faster, blind
            to image-blindness; `run --no-grounding`).
        templates: also score the references after every known template's answer cue.
        max_fail, max_warn: override the suite's gate.
        progress: `progress(stage, done, total)` as work finishes.
        loading: `message -> context manager` shown while the weights load (a spinner).
        tune_malloc: on glibc CPUs keep freed tensor memory for reuse (process-wide; `run` does).
        label: how the report names the checkpoint (default: the folder, or `model at URL`).
        **loader_options: AdapterSpec fields: adapter, device, dtype, template, batch_size,
            base, vision_tower, base_url, model, concurrency, timeout, prefix_cache.

    Raises:
        UsageError: a bad option, profile or template (SuiteError: a bad suite). Nothing loaded.
        EvaluationFailed: the checkpoint could not be opened or the evaluation crashed;
            `.scorecard` is the report that says so.
    """
    from vibes_eval.adapter import plan_adapter

    adapter = checkpoint_or_adapter if isinstance(checkpoint_or_adapter, Adapter) else None
    spec = None if adapter is not None else _spec(checkpoint_or_adapter, loader_options)
    if adapter is not None and loader_options:
        raise TypeError(
            f"evaluate: loader options ({', '.join(loader_options)}) need a checkpoint, not an open Adapter"
        )
    ckpt = spec.checkpoint if spec is not None else getattr(adapter, "ckpt", None)
    name = label or (spec.label if spec is not None else str(ckpt or adapter.name))
    the_suite = resolve_suite(suite, Path(ckpt) if ckpt is not None else None)
    gate = {k: v for k, v in (("max_fail", max_fail), ("max_warn", max_warn)) if v is not None}
    if gate:
        the_suite = the_suite.model_copy(update={"gate": the_suite.gate.model_copy(update=gate)})
    if adapter is None:
        try:  # a UsageError (an option, profile or template) propagates before anything loads
            plan = plan_adapter(spec)
            problem = _token_problem(the_suite, plan.detection)
            if problem:
                raise UsageError(problem)
            with loading(plan.message) if loading else nullcontext():
                adapter = plan.open()
        except (CheckpointError, RemoteError) as e:
            raise EvaluationFailed(error_scorecard(name, the_suite, load_error_verdict(str(e)))) from e
    if tune_malloc and adapter.device == "cpu":  # this process only runs the model: keep freed tensor memory for reuse
        from vibes_eval.loaders.hf import tune_cpu_malloc

        tune_cpu_malloc()
    try:
        return run_suite(
            the_suite, adapter, checkpoint=name, grounding_probes=grounding, templates=templates, progress=progress
        )
    except Exception as e:  # an internal failure: a scorecard that says we could not evaluate
        verdict = Verdict(
            status=Status.ERROR, summary=[f"{name}: evaluation failed: {one_line(e)}"], exit_code=EXIT_EVAL
        )
        raise EvaluationFailed(error_scorecard(name, the_suite, verdict)) from e
    finally:
        if spec is not None:  # opened here: released here (an Adapter the caller passed stays open)
            adapter.close()
