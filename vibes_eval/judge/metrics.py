"""The numbers of a Scorecard: pass rate and the grounding signals, as plain floats.

One place reads them out of a scorecard's signals, so the Trainer callback's `vibes/*` metrics,
the trend plots of `vibes-eval watch` and the `--baseline` comparison agree on what
"image_gain at step 500" means. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

from vibes_eval.records import Scorecard, Status

__all__ = ["METRICS", "Metric", "metric_values", "threshold_of"]


@dataclass(frozen=True)
class Metric:
    """One number read off a checkpoint-level signal's evidence."""

    name: str
    probe: str
    key: str
    """The signal's evidence key holding the value."""
    label: str
    higher_is_better: bool = True
    threshold_key: str | None = "threshold"
    """The evidence key holding the value at which the probe fails (None: a fixed one, see threshold_of)."""


METRICS: tuple[Metric, ...] = (
    Metric("image_gain", "image_gain", "gain_nats_per_token", "image gain (nats/token)"),
    Metric("cross_match", "cross_match", "share", "cross-match (share won, chance 0.5)", threshold_key=None),
    Metric("likelihood", "likelihood", "mean_loglik_nats_per_token", "reference likelihood (nats/token)"),
    Metric("template_fit", "template_fit", "margin_nats_per_token", "best template's margin (nats/token)",
           higher_is_better=False, threshold_key=None),
    Metric("counterfactual", "counterfactual", "mean_similarity", "answer similarity with blank/swap image",
           higher_is_better=False, threshold_key=None),
)
"""The signals a trend plots and a baseline compares, in display order (pass_rate comes first)."""


def _signals(sc: Scorecard) -> dict:
    return {s.probe: s for s in sc.signals}


def metric_values(sc: Scorecard) -> dict[str, float]:
    """pass_rate (share of prompts that passed) and every METRICS value the scorecard has.

    A probe that was skipped or errored has no value (the key is left out), never a made-up zero.
    """
    out: dict[str, float] = {}
    if sc.prompts:
        out["pass_rate"] = round(sum(p.status == Status.PASS for p in sc.prompts) / len(sc.prompts), 4)
    sig = _signals(sc)
    for m in METRICS:
        s = sig.get(m.probe)
        if s is None or s.status in (Status.SKIP, Status.ERROR):
            continue
        value = s.evidence.get(m.key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[m.name] = float(value)
    return out


def threshold_of(sc: Scorecard, metric: Metric) -> float | None:
    """The value at which `metric`'s probe fails in this scorecard (drawn on the trend plots)."""
    from vibes_eval.probes import grounding

    s = _signals(sc).get(metric.probe)
    if metric.threshold_key and s is not None and isinstance(s.evidence.get(metric.threshold_key), (int, float)):
        return float(s.evidence[metric.threshold_key])
    fixed = {"image_gain": grounding.GAIN_FAIL, "likelihood": grounding.LIKELIHOOD_FAIL,
             "template_fit": grounding.TEMPLATE_MARGIN, "counterfactual": grounding.SAME_FAIL}
    return fixed.get(metric.name)
