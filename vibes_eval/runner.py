"""run_suite(suite, adapter) -> Scorecard: the one place that calls the adapter.

For every prompt: the real-image answer, the answers with a blank and with another suite
image (counterfactuals), and teacher-forced likelihoods of the references (under the real
image, the blank one, at most CROSS_MATCH_K other suite images, and after every known template's answer cue). Then the probes
read those numbers and the verdict judges them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vibes_eval.probes import grounding, loader
from vibes_eval.probes.expect import probe_expect
from vibes_eval.probes.text import run_text_probes
from vibes_eval.records import PromptResult, Request, Response, Scorecard, Signal, Status, worst
from vibes_eval.templates import TEMPLATES, answer_cue
from vibes_eval.verdict import judge

__all__ = ["Progress", "run_suite"]

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work finishes."""


@dataclass
class _Collected:
    """What the model said and how likely it found the references; filled step by step."""

    real: dict[str, Response] = field(default_factory=dict)
    blank: dict[str, Response] = field(default_factory=dict)
    swap: dict[str, Response] = field(default_factory=dict)
    matrix: dict[str, dict[str, float | None]] = field(default_factory=dict)
    blank_lik: dict[str, float | None] = field(default_factory=dict)
    template_lik: dict[str, float | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


TEMPLATE_SWEEP_REFS = 4
"""References scored under every known answer cue. The shortest ones: a template's effect
concentrates on an answer's first tokens (measured on the toy zoo: the wrong-template margin is
2.14 nats/token with the 4 shortest of 8 references, 1.68 with all 8)."""


def _distinct_cues() -> list[str]:
    """Known template names, one per distinct text after the image (llava-1.5-hf == vicuna_v1 there)."""
    seen: dict[str, str] = {}
    for name in TEMPLATES:
        seen.setdefault(answer_cue(name), name)
    return list(seen.values())


def _swap_partner(prompts, i: int):
    """The next prompt (cyclically) whose image is a different file."""
    n = len(prompts)
    for k in range(1, n):
        other = prompts[(i + k) % n]
        if other.path != prompts[i].path:
            return other
    return None


def _cross_match_plan(prompts) -> dict[str, list]:
    """Per prompt id: the prompt itself (its own image), then prompts standing for at most
    CROSS_MATCH_K other image files of the suite (grounding.comparison_plan: fixed, seeded, symmetric),
    so the likelihood rows grow as N * K, not N * N."""
    first: dict[str, object] = {}
    for p in prompts:
        first.setdefault(p.image, p)
    plan = grounding.comparison_plan(list(first), k=grounding.CROSS_MATCH_K)
    return {p.id: [p, *(first[o] for o in plan[p.image])] for p in prompts}


def run_suite(suite, adapter, *, checkpoint: str, grounding_probes: bool = True, templates: bool = True,
              progress: Progress | None = None) -> Scorecard:
    """Ask every prompt of `suite`, run every probe, judge; return the Scorecard.

    Args:
        suite: a loaded Suite.
        adapter: the live Adapter (generate, score, describe).
        checkpoint: the checkpoint's path or name, for the report.
        grounding_probes: ask the counterfactual variants and score the references (default on).
        templates: also score the references after every known template's answer cue (template fit).
        progress: optional callback (stage, done, total).
    """
    t0 = time.perf_counter()
    prompts = suite.prompts
    tick = progress or (lambda stage, done, total: None)
    col = _Collected()
    fingerprint = adapter.describe(sample_images=list(dict.fromkeys(p.path for p in prompts)))

    def req(p, variant="real", image=None, template=None):
        return Request(prompt_id=p.id, variant=variant, image=image or p.path, question=p.question,
                       max_new_tokens=suite.max_new_tokens(p), template=template)

    scored = [p for p in prompts if p.category != "refusal"]
    cf: list[Request] = []
    if grounding_probes and scored:
        cf = [req(p, "blank") for p in scored]
        partners = {p.id: _swap_partner(prompts, prompts.index(p)) for p in scored}
        cf += [req(p, "swap", partners[p.id].path) for p in scored if partners[p.id] is not None]
    # one call: the answers and the counterfactual variants share decode steps (one batch where it fits)
    tick("answers", 0, len(prompts))
    if cf:
        tick("counterfactuals", 0, len(cf))
    for r in adapter.generate([req(p) for p in prompts] + cf):
        {"real": col.real, "blank": col.blank, "swap": col.swap}[r.variant][r.prompt_id] = r
    tick("answers", len(prompts), len(prompts))
    if cf:
        tick("counterfactuals", len(cf), len(cf))

    if grounding_probes and scored:
        scoring = getattr(adapter, "supports_scoring", True)
        targets = {p.id: (p.reference or (col.real[p.id].text if col.real[p.id].finish != "error" else None)) for p in scored}
        with_ref = [p for p in scored if targets[p.id]]
        reqs, tgts, keys = [], [], []
        plan = _cross_match_plan(with_ref)
        for p in with_ref:  # every reference under its own image, at most K other suite images, and a blank one
            for q in plan[p.id]:
                reqs.append(req(p, "real" if q is p else "swap", q.path))
                tgts.append(targets[p.id])
                keys.append(("m", p.id, q.id))
            reqs.append(req(p, "blank"))
            tgts.append(targets[p.id])
            keys.append(("b", p.id, None))
        in_use = getattr(adapter, "template_name", None) or "checkpoint"
        # the shortest references: the template's effect concentrates on an answer's first tokens
        sweep = sorted(with_ref, key=lambda p: len(targets[p.id]))[:TEMPLATE_SWEEP_REFS]
        if templates:  # the in-use template's own value is the real-image row of the matrix
            for name in _distinct_cues():
                if name == in_use:
                    continue
                for p in sweep:
                    reqs.append(req(p, template=name))
                    tgts.append(targets[p.id])
                    keys.append(("t", name, p.id))
        if not scoring:
            reqs = []
        tick("likelihoods", 0, len(reqs))
        try:
            values = adapter.score(reqs, tgts) if reqs else []
        except Exception as e:  # the likelihood probes cannot run: an error signal, the rest of the run goes on
            values = [None] * len(reqs)
            col.errors.append(f"scoring failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        tick("likelihoods", len(reqs), len(reqs))
        per_template: dict[str, list[float]] = {}
        for key, v in zip(keys, values):
            if key[0] == "m":
                col.matrix.setdefault(key[1], {})[key[2]] = v
            elif key[0] == "b":
                col.blank_lik[key[1]] = v
            elif v is not None:
                per_template.setdefault(key[1], []).append(v)
        col.template_lik = {k: sum(v) / len(v) for k, v in per_template.items() if v}
        if templates:
            real_vals = [col.matrix[p.id].get(p.id) for p in sweep if col.matrix.get(p.id, {}).get(p.id) is not None]
            if real_vals:
                col.template_lik[in_use] = sum(real_vals) / len(real_vals)

    results = []
    for p in prompts:
        resp = col.real[p.id]
        sigs = list(run_text_probes(resp, p.question, suite.max_new_tokens(p)))
        sigs.append(probe_expect(None if resp.finish == "error" else resp.text, p.expect))
        variants = {v: d[p.id].text if d[p.id].finish != "error" else f"(error: {d[p.id].error})"
                    for v, d in (("blank", col.blank), ("swap", col.swap)) if p.id in d}
        status = worst(s.status for s in sigs if s.status != Status.SKIP)
        results.append(PromptResult(
            id=p.id, category=p.category, question=p.question, image=p.image, image_path=str(p.path),
            answer=None if resp.finish == "error" else resp.text, status=status, signals=sigs,
            variants=variants, error=resp.error, reference=p.reference,
        ))

    signals: list[Signal] = list(loader.run_loader_probes(fingerprint))
    signals += [Signal(probe="likelihoods", status=Status.ERROR, reason=e) for e in col.errors]
    if grounding_probes and scored:
        real_text = {i: r.text for i, r in col.real.items() if r.finish != "error" and i in {p.id for p in scored}}
        signals.append(grounding.probe_counterfactual(
            real_text,
            {i: r.text for i, r in col.blank.items() if r.finish != "error"},
            {i: r.text for i, r in col.swap.items() if r.finish != "error"},
        ))
        if scoring:
            real_lik = {i: row.get(i) for i, row in col.matrix.items()}
            signals.append(grounding.probe_image_gain(col.matrix, col.blank_lik))
            signals.append(grounding.probe_cross_match(col.matrix))
            signals.append(grounding.probe_likelihood(real_lik))
            if templates:
                signals.append(grounding.probe_template_fit(col.template_lik, in_use))
        else:
            why = "The adapter cannot return log-likelihoods (e.g. a server without prompt logprobs): skipped."
            signals += [Signal(probe=n, status=Status.SKIP, reason=why) for n in ("image_gain", "cross_match", "likelihood", "template_fit")]
    verdict = judge(results, signals, fingerprint, suite.gate)
    return Scorecard(
        checkpoint=checkpoint,
        suite={"name": suite.name, "path": str(suite.file) if suite.file else None, "sha256": suite.sha256},
        fingerprint=fingerprint,
        prompts=results,
        signals=signals,
        verdict=verdict,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 2),
    )
