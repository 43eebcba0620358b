"""Checkpoint-level probes: registered functions of the Evidence, each declaring what it needs.

`CHECKPOINT_PROBES` lists them in the order their signals are reported. A probe whose needs the
evidence does not meet is left out (grounding off), or, when the adapter cannot provide it
(`Evidence.unavailable`: no likelihoods, no other templates), reported as skipped with the reason. To add a
probe: a pure function in probes/ (numbers in, Signal out), a name in `records.ProbeName`, and
one `@checkpoint_probe(...)` registration here; the verdict reads its signal by that name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vibes_eval.evidence import Evidence, Need
from vibes_eval.probes import grounding, loader
from vibes_eval.records import ProbeName, Signal, Status

__all__ = ["CHECKPOINT_PROBES", "CheckpointProbe", "checkpoint_probe", "run_checkpoint_probes"]


@dataclass(frozen=True)
class CheckpointProbe:
    """A probe of the whole checkpoint: its name, what evidence it needs, the function."""

    name: str
    """A ProbeName (or, for a probe added outside vibes_eval, its own name)."""
    needs: tuple[str, ...]
    run: Callable[[Evidence], Iterable[Signal]]


CHECKPOINT_PROBES: list[CheckpointProbe] = []


def checkpoint_probe(name: str, *needs: str):
    """Register `fn(evidence) -> Signal | list[Signal]` as the probe `name` needing `needs`."""

    def register(fn):
        def run(ev: Evidence) -> list[Signal]:
            out = fn(ev)
            return [out] if isinstance(out, Signal) else list(out)

        CHECKPOINT_PROBES.append(CheckpointProbe(str(name), needs, run))
        return fn

    return register


def run_checkpoint_probes(ev: Evidence, probes: list[CheckpointProbe] | None = None) -> list[Signal]:
    """Every registered probe the evidence allows, in registration order."""
    signals: list[Signal] = []
    for probe in CHECKPOINT_PROBES if probes is None else probes:
        missing = next((n for n in probe.needs if not ev.has(n)), None)
        if missing is None:
            signals += probe.run(ev)
        elif missing in ev.unavailable:  # the adapter cannot provide it: say so
            signals.append(Signal(probe=probe.name, status=Status.SKIP, reason=ev.unavailable[missing]))
    return signals


# -- the registrations, in report order -----------------------------------------------------------


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
