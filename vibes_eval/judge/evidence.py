"""Collect, then judge: what one run asks the model, and the typed record of what it answered.

`collect(suite, adapter)` asks every prompt with its own image, a blank one and another suite
image (the counterfactuals), then scores the references teacher-forced: under its own image, at
most CROSS_MATCH_K other suite images, a blank one, and after every known template's answer cue. It returns an `Evidence` record;
the probes (`judge/registry.py`, `probes/text.py`) read it and the verdict judges their
signals. Nothing here interprets a number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vibes_eval.adapters.templates import TEMPLATES, answer_cue
from vibes_eval.errors import one_line
from vibes_eval.probes import grounding
from vibes_eval.records import Request, Response

__all__ = ["TEMPLATE_SWEEP_REFS", "Evidence", "Need", "Progress", "collect"]

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work finishes."""

TEMPLATE_SWEEP_REFS = 4
"""References scored under every known answer cue. The shortest ones: a template's effect
concentrates on an answer's first tokens (measured on the toy zoo: the wrong-template margin is
2.14 nats/token with the 4 shortest of 8 references, 1.68 with all 8)."""


NO_LIKELIHOODS = "The adapter cannot return log-likelihoods (e.g. a server without prompt logprobs): skipped."
NO_TEMPLATES = "The adapter applies its own chat template (a server): no other template can be tried; skipped."


class Need:
    """What a checkpoint-level probe needs from the evidence (see `Evidence.has`)."""

    FINGERPRINT = "fingerprint"
    """What was loaded (always there)."""
    COUNTERFACTUALS = "counterfactuals"
    """Blank- and swapped-image answers (grounding probes on, and a prompt that is not a refusal)."""
    LIKELIHOODS = "likelihoods"
    """Teacher-forced log-likelihoods of the references (the adapter supports scoring)."""
    TEMPLATES = "templates"
    """The references scored after every known template's answer cue."""


@dataclass
class Evidence:
    """Everything the model said and how likely it found the references, for one suite run."""

    fingerprint: dict
    answers: dict[str, dict[str, Response]] = field(default_factory=lambda: {"real": {}, "blank": {}, "swap": {}})
    """variant (real / blank / swap) -> prompt id -> Response."""
    grounded: list[str] = field(default_factory=list)
    """Ids of the prompts asked with counterfactual images (every prompt but the refusals)."""
    scoring: bool = False
    """Likelihoods were asked for (the adapter supports scoring)."""
    templates: bool = False
    """The template sweep ran."""
    matrix: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """matrix[ref_id][image_id] = mean log p(reference of ref_id | image of image_id) per token."""
    blank: dict[str, float | None] = field(default_factory=dict)
    """blank[ref_id] = the same under a blank image."""
    template_lik: dict[str, float] = field(default_factory=dict)
    """Mean likelihood of the sweep's references after each known template's cue (the one in use included)."""
    in_use: str = "checkpoint"
    """The template asked with (`checkpoint`: the checkpoint's own chat template)."""
    errors: list[str] = field(default_factory=list)
    """Why scoring failed, one line each."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Need -> why the adapter cannot provide it (a probe needing it is reported skipped with this reason)."""

    def has(self, need: str) -> bool:
        """Whether the evidence holds what `need` names."""
        if need == Need.FINGERPRINT:
            return True
        if need == Need.COUNTERFACTUALS:
            return bool(self.grounded)
        if need == Need.LIKELIHOODS:
            return bool(self.grounded) and self.scoring
        if need == Need.TEMPLATES:
            return self.templates
        raise ValueError(f"unknown evidence need {need!r}")

    def texts(self, variant: str, ids=None) -> dict[str, str]:
        """Answer texts of one variant that did not crash (only `ids`, if given)."""
        return {
            i: r.text for i, r in self.answers[variant].items() if r.finish != "error" and (ids is None or i in ids)
        }


@dataclass(frozen=True)
class _Cell:
    """One likelihood to ask for: reference `ref` under image `image` (None: blank), or after `template`'s cue."""

    ref: str
    image: str | None = None
    template: str | None = None


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


class _Asker:
    """Builds the run's Requests for one suite."""

    def __init__(self, suite):
        self.suite = suite
        self.by_id = {p.id: p for p in suite.prompts}

    def __call__(self, p, variant="real", image=None, template=None) -> Request:
        return Request(
            prompt_id=p.id,
            variant=variant,
            image=image or p.path,
            question=p.question,
            max_new_tokens=self.suite.max_new_tokens(p),
            template=template,
        )


def _answers(ev: Evidence, suite, adapter, ask: _Asker, grounding: bool, tick: Progress) -> None:
    """The real answers and, with grounding, the blank- and swapped-image ones: one generate call."""
    prompts = suite.prompts
    scored = [p for p in prompts if p.category != "refusal"]
    cf: list[Request] = []
    if grounding and scored:
        ev.grounded = [p.id for p in scored]
        cf = [ask(p, "blank") for p in scored]
        partners = {p.id: _swap_partner(prompts, prompts.index(p)) for p in scored}
        cf += [ask(p, "swap", partners[p.id].path) for p in scored if partners[p.id] is not None]
    # one call: the answers and the counterfactual variants share decode steps (one batch where it fits)
    tick("answers", 0, len(prompts))
    if cf:
        tick("counterfactuals", 0, len(cf))
    for r in adapter.generate([ask(p) for p in prompts] + cf):
        ev.answers[r.variant][r.prompt_id] = r
    tick("answers", len(prompts), len(prompts))
    if cf:
        tick("counterfactuals", len(cf), len(cf))


def _cross_match_plan(ask: _Asker, with_ref: list[str]) -> dict[str, list[str]]:
    """Per prompt id: itself (its own image), then prompts standing for at most CROSS_MATCH_K other image
    files of the suite (grounding.comparison_plan: fixed, seeded, symmetric): rows grow as N * K, not N * N."""
    first: dict[str, str] = {}
    for i in with_ref:
        first.setdefault(ask.by_id[i].image, i)
    plan = grounding.comparison_plan(list(first), k=grounding.CROSS_MATCH_K)
    return {i: [i, *(first[o] for o in plan[ask.by_id[i].image])] for i in with_ref}


def _cells(ev: Evidence, plan: dict[str, list[str]], sweep: list[str]) -> list[_Cell]:
    """Each reference under its own image, its planned other images and a blank one; then the template sweep."""
    cells = []
    for p, images in plan.items():
        cells += [_Cell(p, image=q) for q in images]
        cells.append(_Cell(p))
    if ev.templates:  # the in-use template's own value is the real-image row of the matrix
        cells += [_Cell(p, template=name) for name in _distinct_cues() if name != ev.in_use for p in sweep]
    return cells


def _likelihoods(ev: Evidence, suite, adapter, ask: _Asker, tick: Progress) -> None:
    """Score the references (or, without one, the real answer) under every condition the probes compare."""
    real = ev.answers["real"]
    targets = {
        i: (ask.by_id[i].reference or (real[i].text if real[i].finish != "error" else None)) for i in ev.grounded
    }
    with_ref = [i for i in ev.grounded if targets[i]]
    # the shortest references: the template's effect concentrates on an answer's first tokens
    sweep = sorted(with_ref, key=lambda i: len(targets[i]))[:TEMPLATE_SWEEP_REFS]
    cells = _cells(ev, _cross_match_plan(ask, with_ref), sweep) if ev.scoring else []
    reqs = []
    for c in cells:
        p = ask.by_id[c.ref]
        if c.template is not None:
            reqs.append(ask(p, template=c.template))
        elif c.image is None:
            reqs.append(ask(p, "blank"))
        else:
            reqs.append(ask(p, "real" if c.image == c.ref else "swap", ask.by_id[c.image].path))
    tick("likelihoods", 0, len(reqs))
    try:
        values = adapter.score(reqs, [targets[c.ref] for c in cells]) if reqs else []
    except Exception as e:  # the likelihood probes cannot run: an error signal, the rest of the run goes on
        values = [None] * len(reqs)
        ev.errors.append(f"scoring failed: {one_line(e)}")
    tick("likelihoods", len(reqs), len(reqs))
    per_template: dict[str, list[float]] = {}
    for c, v in zip(cells, values):
        if c.template is not None:
            if v is not None:
                per_template.setdefault(c.template, []).append(v)
        elif c.image is None:
            ev.blank[c.ref] = v
        else:
            ev.matrix.setdefault(c.ref, {})[c.image] = v
    ev.template_lik = {k: sum(v) / len(v) for k, v in per_template.items() if v}
    if ev.templates:
        own = [ev.matrix[i].get(i) for i in sweep if ev.matrix.get(i, {}).get(i) is not None]
        if own:
            ev.template_lik[ev.in_use] = sum(own) / len(own)


def collect(
    suite, adapter, *, grounding: bool = True, templates: bool = True, progress: Progress | None = None
) -> Evidence:
    """Ask and score everything the probes need; return the Evidence (no judging here).

    Args:
        suite: a loaded Suite.
        adapter: an open Adapter.
        grounding: ask the counterfactual variants and score the references.
        templates: also score the references after every known template's answer cue.
        progress: optional callback (stage, done, total).
    """
    tick = progress or (lambda stage, done, total: None)
    ask = _Asker(suite)
    ev = Evidence(fingerprint=adapter.describe(sample_images=list(dict.fromkeys(p.path for p in suite.prompts))))
    _answers(ev, suite, adapter, ask, grounding, tick)
    if ev.grounded:
        ev.scoring = adapter.supports_scoring
        ev.templates = templates and adapter.supports_templates
        ev.in_use = adapter.template_name or "checkpoint"
        if not ev.scoring:
            note = adapter.scoring_note
            ev.unavailable[Need.LIKELIHOODS] = f"No log-likelihoods from the adapter: {note}: skipped." if note else NO_LIKELIHOODS
        if templates and not adapter.supports_templates:
            ev.unavailable[Need.TEMPLATES] = NO_TEMPLATES
        _likelihoods(ev, suite, adapter, ask, tick)
    return ev
