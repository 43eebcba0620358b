"""Grounding probes: does the answer depend on the image?

Inputs are plain numbers and strings the runner collected: real / blank / swapped-image
answers, and teacher-forced log-likelihoods of the references. No torch here.

- counterfactual: the answer with a blank or another suite image, compared with the real one.
- image_gain: mean per-token log p(reference | real image) - log p(reference | blank image).
- cross_match: how often a reference is most likely under its own image among all suite images.
- template_fit: the references scored after every known template's answer cue (the prompt up to
  the image stays the checkpoint's own: `templates.splice_template`); a far better one names the
  template the checkpoint was probably trained with.
- likelihood: the absolute per-token log-likelihood of the references (a broken LLM cannot
  predict even correct answers).
"""

from __future__ import annotations

import difflib
import re

from vibes_eval.records import Signal, Status

__all__ = [
    "GAIN_FAIL",
    "HEALTHY_TOY",
    "MATCH_FAIL_FACTOR",
    "SAME_FAIL",
    "TEMPLATE_MARGIN",
    "LIKELIHOOD_FAIL",
    "MISMATCH_STRUCTURE",
    "probe_counterfactual",
    "probe_cross_match",
    "probe_image_gain",
    "probe_likelihood",
    "probe_template_fit",
    "similarity",
]

SAME_FAIL = 0.8  # mean similarity to the counterfactual answers at which the model looks image-blind
GAIN_FAIL = 0.5  # nats per token; below this the real image explains the references no better than a blank one
MATCH_FAIL_FACTOR = 2.0  # cross-match below this multiple of chance fails
TEMPLATE_MARGIN = 1.0  # nats per token by which another template must beat the one in use
LIKELIHOOD_FAIL = -4.0  # nats per token; references this unlikely under the real image: the LLM is broken
MISMATCH_STRUCTURE = 2.5  # nats per token; best-vs-median image spread that marks a suite with mismatched images
# what the healthy toy shows (bench/detection.py), quoted in reasons so a number has a scale
HEALTHY_TOY = {"image_gain": 2.4, "cross_match": 0.57, "counterfactual": 0.41, "likelihood": -0.0}


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def similarity(a: str | None, b: str | None) -> float:
    """How alike two answers are, in [0, 1] (1 = the same words in the same order)."""
    if a is None or b is None:
        return 0.0
    a, b = _norm(a), _norm(b)
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a.split(), b.split()).ratio()


def probe_counterfactual(real: dict[str, str], blank: dict[str, str], swap: dict[str, str]) -> Signal:
    """Checkpoint level: are the answers the same whatever the image? (refusals excluded by the caller)"""
    ids = [i for i in real if i in blank and i in swap]
    if not ids:
        return Signal(probe="counterfactual", status=Status.SKIP, reason="No prompt had real, blank and swapped answers.")
    sb = [similarity(real[i], blank[i]) for i in ids]
    ss = [similarity(real[i], swap[i]) for i in ids]
    same_blank = sum(s >= 0.9 for s in sb)
    same_swap = sum(s >= 0.9 for s in ss)
    mean = (sum(sb) + sum(ss)) / (2 * len(ids))
    ev = {"prompts": len(ids), "same_with_blank": same_blank, "same_with_swap": same_swap, "mean_similarity": round(mean, 3)}
    words = (
        f"Same answer with a blank image on {same_blank}/{len(ids)} prompts and with another image on "
        f"{same_swap}/{len(ids)} (mean similarity {mean:.2f})"
    )
    if mean >= SAME_FAIL:
        return Signal(probe="counterfactual", status=Status.FAIL, score=round(1 - mean, 3),
                      reason=words + ": the answers do not depend on the image.", evidence=ev)
    return Signal(probe="counterfactual", status=Status.PASS, score=round(1 - mean, 3), reason=words + ".", evidence=ev)


def probe_image_gain(matrix: dict[str, dict[str, float | None]], blank: dict[str, float | None]) -> Signal:
    """Checkpoint level: per-token log-likelihood gain of the references from their own image over a blank one.

    matrix[ref_id][image_id] = log p(reference of ref_id | image of image_id); blank[ref_id] likewise
    with a blank image. When the own-image gain is low but the references are explained far better
    by some other suite image than by the typical one (`structure`, the mean of best minus median
    image), the model sees and the suite pairs references with the wrong images: a warning about
    the suite, not a blind model. Measured on the toy: structure 2.9 for the healthy model on a
    suite with shuffled images, 1.7 for a disconnected projector, 0.0 for an image-blind LLM.
    """
    own, best, structure = [], [], []
    for r, row in matrix.items():
        b = blank.get(r)
        vals = sorted((v for v in row.values() if v is not None), reverse=True)
        if b is None or row.get(r) is None or len(vals) < 2:
            continue
        own.append(row[r] - b)
        best.append(vals[0] - b)
        structure.append(vals[0] - vals[len(vals) // 2])
    if not own:
        return Signal(probe="image_gain", status=Status.SKIP, reason="No reference could be scored with both images.")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    g_own, g_best, g_struct = mean(own), mean(best), mean(structure)
    ev = {"prompts": len(own), "gain_nats_per_token": round(g_own, 3), "best_image_gain": round(g_best, 3),
          "structure": round(g_struct, 3), "threshold": GAIN_FAIL, "healthy_toy": HEALTHY_TOY["image_gain"]}
    score = max(0.0, min(1.0, g_own / (4 * GAIN_FAIL)))
    if g_own >= GAIN_FAIL:
        return Signal(probe="image_gain", status=Status.PASS, score=score, evidence=ev,
                      reason=f"Image gain {g_own:.2f} nats per token: the real image makes the references more likely.")
    if g_struct >= MISMATCH_STRUCTURE:
        return Signal(probe="image_gain", status=Status.WARN, score=score, evidence=ev,
                      reason=f"The references gain only {g_own:.2f} nats per token from their own image but {g_best:.2f} from "
                             "the suite image that fits them best: the model sees, but the suite's images and references look mismatched.")
    return Signal(probe="image_gain", status=Status.FAIL, score=0.0, evidence=ev,
                  reason=f"Image gain {g_own:.2f} nats per token (threshold {GAIN_FAIL}; healthy toy {HEALTHY_TOY['image_gain']}): "
                         "the real image makes the reference answers no more likely than a blank one.")


def probe_cross_match(matrix: dict[str, dict[str, float | None]]) -> Signal:
    """Checkpoint level: matrix[ref_id][image_id] = log p(reference of ref_id | image of image_id).

    A reference counts as matched when its own image gives it the highest likelihood among all
    the suite's images; ties share the credit, so a model that ignores the image scores chance.
    """
    ids = [i for i in matrix if matrix[i].get(i) is not None]
    if len(ids) < 2:
        return Signal(probe="cross_match", status=Status.SKIP, reason="Cross-match needs at least two scored references.")
    hits = 0.0
    for r in ids:
        row = {j: v for j, v in matrix[r].items() if v is not None}
        best = max(row.values())
        winners = [j for j, v in row.items() if v >= best - 1e-4]
        hits += (1.0 / len(winners)) if r in winners else 0.0
    rate, chance = hits / len(ids), 1.0 / len(ids)
    ev = {"references": len(ids), "rate": round(rate, 3), "chance": round(chance, 3), "threshold": round(MATCH_FAIL_FACTOR * chance, 3)}
    words = f"Cross-match {rate:.2f}: {hits:.0f}/{len(ids)} references are most likely under their own image (chance {chance:.2f})"
    if rate < MATCH_FAIL_FACTOR * chance:
        return Signal(probe="cross_match", status=Status.FAIL, score=rate, evidence=ev,
                      reason=words + ": the model cannot tell the images apart.")
    return Signal(probe="cross_match", status=Status.PASS, score=rate, reason=words + ".", evidence=ev)


def probe_template_fit(by_template: dict[str, float | None], in_use: str) -> Signal:
    """Checkpoint level: mean per-token log-likelihood of the references under each template."""
    scored = {k: v for k, v in by_template.items() if v is not None}
    if in_use not in scored or len(scored) < 2:
        return Signal(probe="template_fit", status=Status.SKIP, reason="References could not be scored under several templates.")
    best = max(scored, key=scored.get)
    margin = scored[best] - scored[in_use]
    ev = {"in_use": in_use, "best": best, "margin_nats_per_token": round(margin, 3),
          "loglik": {k: round(v, 3) for k, v in sorted(scored.items(), key=lambda kv: -kv[1])}}
    if best != in_use and margin > TEMPLATE_MARGIN:
        return Signal(probe="template_fit", status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"The references are {margin:.1f} nats per token more likely after template '{best}''s answer "
                             f"cue than after the one in use ({in_use}): the checkpoint was probably trained with '{best}'; "
                             f"pass --template {best} or fix its chat template.")
    return Signal(probe="template_fit", status=Status.PASS, score=1.0, evidence=ev,
                  reason=f"The template in use ({in_use}) explains the references as well as any known template.")


def probe_likelihood(real: dict[str, float | None]) -> Signal:
    """Checkpoint level: how likely the correct references are under the real image at all."""
    vals = [v for v in real.values() if v is not None]
    if not vals:
        return Signal(probe="likelihood", status=Status.SKIP, reason="No reference could be scored.")
    mean = sum(vals) / len(vals)
    ev = {"references": len(vals), "mean_loglik_nats_per_token": round(mean, 3), "threshold": LIKELIHOOD_FAIL}
    if mean < LIKELIHOOD_FAIL:
        return Signal(probe="likelihood", status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"The reference answers average {mean:.1f} nats per token (threshold {LIKELIHOOD_FAIL}): "
                             "the language model cannot predict even correct answers.")
    return Signal(probe="likelihood", status=Status.PASS, score=1.0, evidence=ev,
                  reason=f"The reference answers average {mean:.2f} nats per token under the real image.")
