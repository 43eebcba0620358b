"""The one way in: `evaluate(checkpoint_or_adapter, suite=None, options=None, **fields) -> Scorecard`.

    from vibes_eval import RunOptions, evaluate

    sc = evaluate("ckpt/")                                  # the default suite for it, every probe on
    sc = evaluate("ckpt/", baseline="reports/release/")     # judged against an earlier report too
    print(sc.verdict.status, sc.verdict.diagnoses)
    raise SystemExit(sc.verdict.exit_code)                  # 0 passed, 1 gate failed, 3 not evaluated

`vibes-eval run` (and through it `watch`, sweeps and the `vibes` pytest fixture), `demo`, the
Trainer callback and bench/ call this; it does what `run` does for one checkpoint except
writing files (`vibes_eval.report.files.write_reports(sc, folder)` does that). The steps:

1. the suite (`suite.schema.load_suite`) and the baseline (`judge.baseline.load_baseline`)
   are read and checked: a UsageError / SuiteError (exit 2) before anything is loaded;
2. the adapter is opened (`adapters.registry.plan_adapter`), unless an open one was given;
3. `judge.evidence.collect` asks the model everything once (real, blank and swapped images,
   teacher-forced references);
4. the text probes and expectations read each answer, the checkpoint probes read the Evidence
   (`judge.registry`), `judge.verdict.judge` turns the signals into diagnoses and an exit code,
   and with a baseline `judge.baseline.apply_baseline` adds the regression rule: here, and only
   here, so the library and the command line cannot disagree.

Errors: a bad option or suite raises UsageError / SuiteError (nothing loaded). A checkpoint that
cannot be opened, or an evaluation that crashes, raises `EvaluationFailed` (a CheckpointError)
whose `.scorecard` records why: the report to write, as `run` does.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import vibes_eval.interrupt as interrupt
from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.errors import EXIT_EVAL, CheckpointError, EvaluationFailed, RemoteError, UsageError, one_line
from vibes_eval.judge.evidence import Evidence, Progress, collect
from vibes_eval.judge.registry import run_answer_probes, run_checkpoint_probes
from vibes_eval.judge.verdict import judge, load_error_verdict
from vibes_eval.options import LOADER_FIELDS, RunOptions
from vibes_eval.probes.expect import probe_expect
from vibes_eval.records import PromptResult, Scorecard, Signal, Status, Verdict, worst
from vibes_eval.resources import default_suite
from vibes_eval.suite.schema import Suite, load_suite

__all__ = ["Baseline", "error_scorecard", "evaluate", "load_run_baseline", "prompt_results", "resolve_suite"]

Baseline = tuple[Scorecard, Path]
"""A loaded baseline: its scorecard and the file it came from."""


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


def load_run_baseline(options: RunOptions, suite: Suite | None = None) -> Baseline | None:
    """The baseline `options` names, checked against `suite` when given; None without one.

    Raises:
        BaselineError (exit 2): unreadable, or run on another suite without `baseline_any_suite`.
    """
    if options.baseline is None and options.baseline_card is None:
        return None
    from vibes_eval.judge.baseline import check_suite, load_baseline

    card, file = options.baseline_card or load_baseline(options.baseline)
    if suite is not None:
        check_suite(card, file, suite.sha256, options.baseline_any_suite)
    return card, file


def _token_problem(suite: Suite, detection) -> str | None:
    """The suite's max_new_tokens above the checkpoint's context (config.json), in one line; else None."""
    if detection is None:
        return None
    from vibes_eval.adapters.sanity import context_length

    found = context_length(detection.config)
    return suite.token_problem(found[0], f"the checkpoint's context ({found[1]})") if found else None



_NOT_REFUSED = (
    "Not refused; a warning, not a failure (gate.refusals: baseline): published LLaVA-1.5, NeXT and OneVision "
    "checkpoints mostly answer such questions; with --baseline, a refusal the baseline gave and this run lost fails. "
)


def _refusal_policy(sig: Signal, prompt, gate) -> Signal:
    """Under `gate.refusals: baseline`, a refusal prompt that was answered warns instead of failing."""
    if gate.refusals != "baseline" or prompt.category != "refusal" or sig.status != Status.FAIL:
        return sig
    if sig.evidence.get("failed") != ["refuse"]:
        return sig  # another expectation failed too: that one still fails the prompt
    return sig.model_copy(update={"status": Status.WARN, "reason": _NOT_REFUSED + sig.reason})


def prompt_results(suite, ev: Evidence) -> list[PromptResult]:
    """Each prompt's real answer with its text probes and expectations, and its counterfactual answers."""
    results = []
    for p in suite.prompts:
        resp = ev.answers["real"][p.id]
        sigs = list(run_answer_probes(resp, p.question, suite.max_new_tokens(p)))
        sigs.append(_refusal_policy(probe_expect(None if resp.finish == "error" else resp.text, p.expect), p, suite.gate))
        variants = {
            v: d[p.id].text if d[p.id].finish != "error" else f"(error: {d[p.id].error})"
            for v, d in (("blank", ev.answers["blank"]), ("swap", ev.answers["swap"]))
            if p.id in d
        }
        results.append(
            PromptResult(
                id=p.id,
                category=p.category,
                question=p.question,
                image=p.image,
                image_path=str(p.path),
                answer=None if resp.finish == "error" else resp.text,
                status=worst(s.status for s in sigs if s.status != Status.SKIP),
                signals=sigs,
                variants=variants,
                error=resp.error,
                error_kind=resp.error_kind,
                reference=p.reference,
            )
        )
    return results


def _judged(suite: Suite, ev: Evidence, name: str, seconds: float, baseline: Baseline | None) -> Scorecard:
    """The scorecard of the collected evidence: every probe, the verdict, and the baseline's regression rule."""
    results = prompt_results(suite, ev)
    signals = run_checkpoint_probes(ev)
    sc = Scorecard(
        checkpoint=name,
        suite={"name": suite.name, "path": str(suite.file) if suite.file else None, "sha256": suite.sha256},
        fingerprint=ev.fingerprint,
        prompts=results,
        signals=signals,
        verdict=judge(results, signals, ev.fingerprint, suite.gate),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        seconds=round(seconds, 2),
    )
    return _against(sc, baseline)


def _against(sc: Scorecard, baseline: Baseline | None) -> Scorecard:
    if baseline is None:
        return sc
    from vibes_eval.judge.baseline import apply_baseline

    return apply_baseline(sc, *baseline)


def _options(target, options: RunOptions | None, fields: dict[str, Any]) -> RunOptions:
    """`options` with `fields` applied; loader fields given by name next to an AdapterSpec (which holds its own),
    or anywhere next to an open Adapter (nothing is opened), are a TypeError."""
    if options is not None and not isinstance(options, RunOptions):
        raise TypeError(f"evaluate: options must be a RunOptions, not {type(options).__name__}")
    given_options = options or RunOptions()
    options = given_options.replace(**fields) if fields else given_options
    if isinstance(target, (AdapterSpec, Adapter)):
        named, default = (options if isinstance(target, Adapter) else RunOptions().replace(**fields)), RunOptions()
        given = [k for k in LOADER_FIELDS if getattr(named, k) != getattr(default, k)]
        if given:
            what = "go into the AdapterSpec itself" if isinstance(target, AdapterSpec) else "need a checkpoint, not an open Adapter"
            raise TypeError(f"evaluate: loader options ({', '.join(given)}) {what}")
    return options


def _open(spec: AdapterSpec, suite: Suite, name: str, loading, baseline: Baseline | None) -> Adapter:
    """The adapter `spec` names; a UsageError propagates before anything loads, a failed load is EvaluationFailed."""
    from vibes_eval.adapters.opening import plan_adapter

    try:
        plan = plan_adapter(spec)
        problem = _token_problem(suite, plan.detection)
        if problem:
            raise UsageError(problem)
        with loading(plan.message) if loading else nullcontext():
            return plan.open()
    except (CheckpointError, RemoteError) as e:
        interrupt.raise_if_stopped()  # a stop asked for while loading: an interrupt, never a load error
        raise EvaluationFailed(_against(error_scorecard(name, suite, load_error_verdict(str(e))), baseline)) from e


def evaluate(
    checkpoint_or_adapter: str | Path | AdapterSpec | Adapter,
    suite: Suite | str | Path | None = None,
    options: RunOptions | None = None,
    *,
    progress: Progress | None = None,
    loading: Callable[[str], AbstractContextManager] | None = None,
    tune_malloc: bool = False,
    label: str | None = None,
    **fields: Any,
) -> Scorecard:
    """Run `suite` on a checkpoint (or an open Adapter) and judge it; return the Scorecard.

    Args:
        checkpoint_or_adapter: a checkpoint folder, an AdapterSpec (a server, say), or an Adapter
            already open (it is not closed here).
        suite: a Suite, a suite YAML path, or None: `options.suite`, else the bundled default
            (shapes for a toy).
        options: a RunOptions (what `vibes-eval run`'s flags set); None: the defaults.
        progress: `progress(stage, done, total)` as work finishes.
        loading: `message -> context manager` shown while the weights load (a spinner).
        tune_malloc: on glibc CPUs keep freed tensor memory for reuse (process-wide; `run` does).
        label: how the report names the checkpoint (default: the folder, or `model at URL`).
        **fields: RunOptions fields given by name (grounding=False, baseline="reports/r1",
            device="cpu", max_fail=0, ...), applied over `options`.

    Raises:
        UsageError: a bad option, profile, template or baseline (SuiteError: a bad suite). Nothing loaded.
        EvaluationFailed: the checkpoint could not be opened or the evaluation crashed;
            `.scorecard` is the report that says so.
        TypeError: an unknown field, or loader options with an AdapterSpec or an open Adapter.
    """
    options = _options(checkpoint_or_adapter, options, fields)
    adapter = checkpoint_or_adapter if isinstance(checkpoint_or_adapter, Adapter) else None
    spec = None
    if adapter is None:
        target = checkpoint_or_adapter
        spec = target if isinstance(target, AdapterSpec) else options.spec(Path(target))
    ckpt = spec.checkpoint if spec is not None else adapter.checkpoint
    name = label or (spec.label if spec is not None else str(ckpt or adapter.name))
    the_suite = resolve_suite(suite if suite is not None else options.suite, Path(ckpt) if ckpt is not None else None)
    gate = {k: v for k, v in (("max_fail", options.max_fail), ("max_warn", options.max_warn)) if v is not None}
    if gate:
        the_suite = the_suite.model_copy(update={"gate": the_suite.gate.model_copy(update=gate)})
    baseline = load_run_baseline(options, the_suite)  # exit 2 before anything loads
    if adapter is None:
        adapter = _open(spec, the_suite, name, loading, baseline)
    if tune_malloc and adapter.device == "cpu":  # this process only runs the model: keep freed tensor memory for reuse
        from vibes_eval.adapters.hf.model import tune_cpu_malloc

        tune_cpu_malloc()
    try:
        t0 = time.perf_counter()
        interrupt.raise_if_stopped()
        ev = collect(the_suite, adapter, grounding=options.grounding, templates=options.templates, progress=_stoppable(progress))
        sc = _judged(the_suite, ev, name, time.perf_counter() - t0, baseline)
    except Exception as e:  # an internal failure: a scorecard that says we could not evaluate
        interrupt.raise_if_stopped()
        verdict = Verdict(status=Status.ERROR, summary=[f"{name}: evaluation failed: {one_line(e)}"], exit_code=EXIT_EVAL)
        raise EvaluationFailed(_against(error_scorecard(name, the_suite, verdict), baseline)) from e
    finally:
        if spec is not None:  # opened here: released here (an Adapter the caller passed stays open)
            adapter.close()
    interrupt.raise_if_stopped()  # nothing judged after a stop was asked for
    return sc


def _stoppable(progress: Progress | None) -> Progress:
    """`progress`, checking for a stop at every tick: a Ctrl-C a library swallowed ends the run at the next stage."""

    def tick(stage: str, done: int, total: int) -> None:
        interrupt.raise_if_stopped()
        if progress is not None:
            progress(stage, done, total)

    return tick
