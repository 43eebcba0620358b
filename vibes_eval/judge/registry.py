"""The one probe registry: every probe of an answer and of the checkpoint, keyed by its ProbeName.

Two scopes, one shape. An *answer* probe reads one answer: `(response, question,
max_new_tokens) -> Signal` (probes/text.py, probes/repetition.py). A *checkpoint* probe reads
the whole Evidence and declares what it needs (`Need.*`): a probe whose needs the evidence does
not meet is left out (grounding off), or, when the adapter cannot provide it
(`Evidence.unavailable`: no likelihoods, no other templates), reported as skipped with the
reason. Either kind that raises becomes one ERROR signal naming the exception, so one bug in a
probe cannot hide the other findings, and never fails the evaluation.

To add a probe: a pure function in probes/ (numbers or strings in, a Signal out), a name in
`records.ProbeName`, its limits in `judge/thresholds.py`, and one registration here
(`@answer_probe(name)` or `@checkpoint_probe(name, *needs)`); the verdict reads its signal by
that name. Signals are reported in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from vibes_eval.errors import one_line
from vibes_eval.judge.evidence import Evidence, Need
from vibes_eval.probes import grounding, text
from vibes_eval.probes import projector as loader
from vibes_eval.records import ProbeName, Response, Signal, Status

__all__ = ["PROBES", "Probe", "answer_probe", "checkpoint_probe", "run_answer_probes", "run_checkpoint_probes"]


@dataclass(frozen=True)
class Probe:
    """A registered probe: its name, its scope, what evidence it needs (checkpoint scope), the function."""

    name: str
    """A ProbeName (or, for a probe added outside vibes_eval, its own name)."""
    scope: Literal["answer", "checkpoint"]
    needs: tuple[str, ...]
    run: Callable[..., Signal | Iterable[Signal]]

    def signals(self, *args) -> list[Signal]:
        """The probe's signals for `args`; a crash is one ERROR signal naming the exception."""
        try:
            out = self.run(*args)
            return [out] if isinstance(out, Signal) else list(out)
        except Exception as exc:  # reported as an ERROR signal, never swallowed
            return [Signal(probe=self.name, status=Status.ERROR, reason=f"The {self.name} probe crashed: {one_line(exc)}",
                           evidence={"crashed": type(exc).__name__})]


PROBES: dict[str, Probe] = {}
"""Every probe by name, in registration (= report) order."""


def _register(name: str, scope: Literal["answer", "checkpoint"], needs: tuple[str, ...]):
    def register(fn):
        key = str(name)
        if key in PROBES:
            raise ValueError(f"probe {key!r} is registered twice")
        PROBES[key] = Probe(key, scope, needs, fn)
        return fn

    return register


def answer_probe(name: str):
    """Register `fn(response, question, max_new_tokens) -> Signal` as the answer probe `name`."""
    return _register(name, "answer", ())


def checkpoint_probe(name: str, *needs: str):
    """Register `fn(evidence) -> Signal | list[Signal]` as the checkpoint probe `name` needing `needs`."""
    return _register(name, "checkpoint", needs)


def run_answer_probes(response: Response, question: str, max_new_tokens: int) -> list[Signal]:
    """Every answer probe on one answer, in registration order."""
    return [s for p in PROBES.values() if p.scope == "answer" for s in p.signals(response, question, max_new_tokens)]


def run_checkpoint_probes(ev: Evidence) -> list[Signal]:
    """Every checkpoint probe the evidence allows, in registration order."""
    signals: list[Signal] = []
    for probe in PROBES.values():
        if probe.scope != "checkpoint":
            continue
        missing = next((n for n in probe.needs if not ev.has(n)), None)
        if missing is None:
            signals += probe.signals(ev)
        elif missing in ev.unavailable:  # the adapter cannot provide it: say so
            signals.append(Signal(probe=probe.name, status=Status.SKIP, reason=ev.unavailable[missing]))
    return signals


# -- answer probes, in report order ---------------------------------------------------------------

for _name, _fn in (
    (ProbeName.EMPTY, text.empty),
    (ProbeName.LOOPS, text.loops),
    (ProbeName.RUNAWAY, text.runaway),
    (ProbeName.NONWORDS, text.nonwords),
    (ProbeName.WORD_SALAD, text.word_salad),
    (ProbeName.SYMBOL_SALAD, text.symbol_salad),
    (ProbeName.TEMPLATE_LEAK, text.template_leak),
    (ProbeName.PROMPT_ECHO, text.prompt_echo),
    (ProbeName.TOO_SHORT, text.too_short),
):
    answer_probe(_name)(_fn)


# -- checkpoint probes, in report order -----------------------------------------------------------


@checkpoint_probe(ProbeName.PROJECTOR_MISSING, Need.FINGERPRINT)
def _projector_missing(ev: Evidence) -> Signal:
    return loader.probe_projector_missing(ev.fingerprint)


@checkpoint_probe(ProbeName.PROJECTOR_WEIGHTS, Need.FINGERPRINT)
def _projector_weights(ev: Evidence) -> Signal:
    return loader.probe_projector_weights(ev.fingerprint)


@checkpoint_probe(ProbeName.PROJECTOR_NORM, Need.FINGERPRINT)
def _projector_norm(ev: Evidence) -> Signal:
    return loader.probe_projector_norm(ev.fingerprint)


@checkpoint_probe(ProbeName.COLLAPSE, Need.FINGERPRINT)
def _collapse(ev: Evidence) -> Signal:
    return loader.probe_collapse(ev.fingerprint)


@checkpoint_probe(ProbeName.ADAPTER_PROJECTOR, Need.FINGERPRINT)
def _adapter_projector(ev: Evidence) -> list[Signal]:
    return loader.probe_adapter_projector(ev.fingerprint)


@checkpoint_probe(ProbeName.LIKELIHOODS)
def _scoring_errors(ev: Evidence) -> list[Signal]:
    return [Signal(probe=ProbeName.LIKELIHOODS.value, status=Status.ERROR, reason=e) for e in ev.errors]


@checkpoint_probe(ProbeName.COUNTERFACTUAL, Need.COUNTERFACTUALS)
def _counterfactual(ev: Evidence) -> Signal:
    return grounding.probe_counterfactual(ev.texts("real", set(ev.grounded)), ev.texts("blank"), ev.texts("swap"))


@checkpoint_probe(ProbeName.IMAGE_GAIN, Need.COUNTERFACTUALS, Need.LIKELIHOODS)
def _image_gain(ev: Evidence) -> Signal:
    return grounding.probe_image_gain(ev.matrix, ev.blank)


@checkpoint_probe(ProbeName.CROSS_MATCH, Need.COUNTERFACTUALS, Need.LIKELIHOODS)
def _cross_match(ev: Evidence) -> Signal:
    return grounding.probe_cross_match(ev.matrix)


@checkpoint_probe(ProbeName.LIKELIHOOD, Need.COUNTERFACTUALS, Need.LIKELIHOODS)
def _likelihood(ev: Evidence) -> Signal:
    return grounding.probe_likelihood({i: row.get(i) for i, row in ev.matrix.items()})


@checkpoint_probe(ProbeName.TEMPLATE_FIT, Need.COUNTERFACTUALS, Need.LIKELIHOODS, Need.TEMPLATES)
def _template_fit(ev: Evidence) -> Signal:
    return grounding.probe_template_fit(ev.template_lik, ev.in_use)
