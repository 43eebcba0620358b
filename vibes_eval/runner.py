"""run_suite(suite, adapter) -> Scorecard: collect the evidence, run the probes, judge.

1. `evidence.collect` asks the model (real, blank and swapped images) and scores the references;
2. the text probes and the prompt's expectations read each answer (`PromptResult`s);
3. the checkpoint-level probes registered in `probes/checkpoint.py` read the Evidence;
4. `verdict.judge` turns the signals into diagnoses and the gate's exit code.
"""

from __future__ import annotations

import datetime as dt
import time

from vibes_eval.evidence import TEMPLATE_SWEEP_REFS, Evidence, Progress, collect
from vibes_eval.probes.checkpoint import run_checkpoint_probes
from vibes_eval.probes.expect import probe_expect
from vibes_eval.probes.text import run_text_probes
from vibes_eval.records import PromptResult, Scorecard, Status, worst
from vibes_eval.verdict import judge

__all__ = ["TEMPLATE_SWEEP_REFS", "Progress", "prompt_results", "run_suite"]


def prompt_results(suite, ev: Evidence) -> list[PromptResult]:
    """Each prompt's real answer with its text probes and expectations, and its counterfactual answers."""
    results = []
    for p in suite.prompts:
        resp = ev.answers["real"][p.id]
        sigs = list(run_text_probes(resp, p.question, suite.max_new_tokens(p)))
        sigs.append(probe_expect(None if resp.finish == "error" else resp.text, p.expect))
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


def run_suite(
    suite,
    adapter,
    *,
    checkpoint: str,
    grounding_probes: bool = True,
    templates: bool = True,
    progress: Progress | None = None,
) -> Scorecard:
    """Ask every prompt of `suite`, run every probe, judge; return the Scorecard.

    Args:
        suite: a loaded Suite.
        adapter: an open Adapter (vibes_eval.adapter.open_adapter).
        checkpoint: the checkpoint's path or name, for the report.
        grounding_probes: ask the counterfactual variants and score the references (default on).
        templates: also score the references after every known template's answer cue (template fit).
        progress: optional callback (stage, done, total).
    """
    t0 = time.perf_counter()
    ev = collect(suite, adapter, grounding=grounding_probes, templates=templates, progress=progress)
    results = prompt_results(suite, ev)
    signals = run_checkpoint_probes(ev)
    verdict = judge(results, signals, ev.fingerprint, suite.gate)
    return Scorecard(
        checkpoint=checkpoint,
        suite={"name": suite.name, "path": str(suite.file) if suite.file else None, "sha256": suite.sha256},
        fingerprint=ev.fingerprint,
        prompts=results,
        signals=signals,
        verdict=verdict,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
    )
