"""Grounding probes: does the answer depend on the image?

Inputs are plain numbers and strings the runner collected: real / blank / swapped-image
answers, and teacher-forced log-likelihoods of the references. No torch here.

- counterfactual: the answer with a blank or another suite image, compared with the real one.
- image_gain: mean per-token log p(reference | real image) - log p(reference | blank image).
- cross_match: how often a reference is more likely under its own image than under another suite
  image, with an exact permutation test against a model that cannot tell the images apart.
- template_fit: the references scored after every known template's answer cue (the prompt up to
  the image stays the checkpoint's own: `templates.splice_template`); a far better one names the
  template the checkpoint was probably trained with.
- likelihood: the absolute per-token log-likelihood of the references (a broken LLM cannot
  predict even correct answers).
"""

from __future__ import annotations

import difflib
import re

from vibes_eval.judge import thresholds
from vibes_eval.records import ProbeName, Signal, Status

__all__ = [
    "CROSS_MATCH_ALPHA",
    "CROSS_MATCH_K",
    "GAIN_FAIL",
    "HEALTHY_TOY",
    "SAME_FAIL",
    "comparison_plan",
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

# the thresholds live in vibes_eval.judge.thresholds (the README's table and bench/detection.py read them too)
SAME_FAIL = thresholds.COUNTERFACTUAL_SAME.value
GAIN_FAIL = thresholds.IMAGE_GAIN.value
CROSS_MATCH_ALPHA = thresholds.CROSS_MATCH_ALPHA.value
CROSS_MATCH_K = 8  # other images each reference is compared with (a fixed, seeded, symmetric sample)
TEMPLATE_MARGIN = thresholds.TEMPLATE_MARGIN.value
LIKELIHOOD_FAIL = thresholds.LIKELIHOOD.value
MISMATCH_STRUCTURE = thresholds.MISMATCH_STRUCTURE.value
HEALTHY_TOY = thresholds.HEALTHY_TOY


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
        return Signal(probe=ProbeName.COUNTERFACTUAL, status=Status.SKIP, reason="No prompt had real, blank and swapped answers.")
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
        return Signal(probe=ProbeName.COUNTERFACTUAL, status=Status.FAIL, score=round(1 - mean, 3),
                      reason=words + ": the answers do not depend on the image.", evidence=ev)
    return Signal(probe=ProbeName.COUNTERFACTUAL, status=Status.PASS, score=round(1 - mean, 3), reason=words + ".", evidence=ev)


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
        return Signal(probe=ProbeName.IMAGE_GAIN, status=Status.SKIP, reason="No reference could be scored with both images.")
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    g_own, g_best, g_struct = mean(own), mean(best), mean(structure)
    ev = {"prompts": len(own), "gain_nats_per_token": round(g_own, 3), "best_image_gain": round(g_best, 3),
          "structure": round(g_struct, 3), "threshold": GAIN_FAIL, "healthy_toy": HEALTHY_TOY["image_gain"]}
    score = max(0.0, min(1.0, g_own / (4 * GAIN_FAIL)))
    if g_own >= GAIN_FAIL:
        return Signal(probe=ProbeName.IMAGE_GAIN, status=Status.PASS, score=score, evidence=ev,
                      reason=f"Image gain {g_own:.2f} nats per token: the real image makes the references more likely.")
    if g_struct >= MISMATCH_STRUCTURE:
        return Signal(probe=ProbeName.IMAGE_GAIN, status=Status.WARN, score=score, evidence=ev,
                      reason=f"The references gain only {g_own:.2f} nats per token from their own image but {g_best:.2f} from "
                             "the suite image that fits them best: the model sees, but the suite's images and references look mismatched.")
    return Signal(probe=ProbeName.IMAGE_GAIN, status=Status.FAIL, score=0.0, evidence=ev,
                  reason=f"Image gain {g_own:.2f} nats per token (threshold {GAIN_FAIL}; healthy toy {HEALTHY_TOY['image_gain']}): "
                         "the real image makes the reference answers no more likely than a blank one.")


def comparison_plan(keys: list[str], k: int = CROSS_MATCH_K, seed: int = 0) -> dict[str, list[str]]:
    """The other images each image's references are compared with: at most `k`, fixed and seeded.

    The distinct images are put in a seeded random order on a circle; each is compared with its
    `k // 2` neighbours on either side (all the others when there are at most k + 1). The plan is
    symmetric (a compares with b exactly when b compares with a) and every image is used equally
    often, so an image that raises every reference's likelihood (brightness, a longer caption)
    helps its own reference exactly as much as it hurts the others' and cannot fake grounding.
    Likelihood rows then grow as N * k instead of N * N.
    """
    import random

    keys = list(dict.fromkeys(keys))
    if len(keys) - 1 <= k:
        return {a: [b for b in keys if b != a] for a in keys}
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    n, half = len(order), max(1, k // 2)
    return {a: [order[(i + d) % n] for d in range(-half, half + 1) if d] for i, a in enumerate(order)}


def _doubled_ranks(own: float, values: list[float]) -> tuple[int, list[int]]:
    """Twice the mid-rank of `own` among `values` (the others), and the same for every value of the row.

    The mid-rank counts the values below and half the ties (within 1e-4 nats). Under the null of
    a model that cannot tell the images apart, the own image is any of the row's values with
    equal chance: the second item is that null distribution, exact given the row's ties.
    """
    row = [own, *values]

    def doubled(x: float, skip: int) -> int:
        return sum(2 if x > v + 1e-4 else 1 if abs(x - v) <= 1e-4 else 0 for j, v in enumerate(row) if j != skip)

    return doubled(own, 0), [doubled(x, j) for j, x in enumerate(row)]


def probe_cross_match(matrix: dict[str, dict[str, float | None]], alpha: float = CROSS_MATCH_ALPHA) -> Signal:
    """Checkpoint level: matrix[ref_id][image_id] = log p(reference of ref_id | image of image_id).

    Each reference ranks its own image among the other images it was scored under (ties count
    half). The score is the share of those comparisons the own image wins (chance 0.5). The test
    is exact: a model that cannot tell the images apart puts its own image anywhere in each row
    with equal chance (independently per reference), so the p-value is the chance of a rank sum
    at least this high under that permutation null, computed by convolving every row's null
    distribution (given its ties; an all-tied row contributes exactly its mean). Passes when
    p <= `alpha` (a blind model passes at most that often: bench/cross_match_null.py measures it).
    """
    import numpy as np

    observed, dist, comparisons, top, refs = 0, np.ones(1), 0, 0.0, 0
    for r, row in matrix.items():
        own = row.get(r)
        others = [v for j, v in row.items() if j != r and v is not None]
        if own is None or not others:
            continue
        got, null = _doubled_ranks(own, others)
        observed += got
        row_dist = np.bincount(null, minlength=2 * len(others) + 1) / len(null)
        dist = np.convolve(dist, row_dist)
        comparisons += len(others)
        refs += 1
        best = max(others)
        top += (1.0 / (1 + sum(abs(v - own) <= 1e-4 for v in others))) if own >= best - 1e-4 else 0.0
    if refs < 2:
        return Signal(probe=ProbeName.CROSS_MATCH, status=Status.SKIP, reason="Cross-match needs at least two scored references.")
    p = float(min(1.0, dist[observed:].sum()))
    share = observed / (2 * comparisons)
    ev = {"references": refs, "comparisons": comparisons, "share": round(share, 3), "p_value": float(f"{p:.3g}"),
          "alpha": alpha, "top1_rate": round(top / refs, 3), "healthy_toy": HEALTHY_TOY["cross_match"]}
    words = (f"Cross-match {share:.2f}: the own image explains its reference better than another suite image in "
             f"{share:.0%} of {comparisons} comparisons (chance 50%; a blind model does this well with p = {p:.2g})")
    if p > alpha:
        return Signal(probe=ProbeName.CROSS_MATCH, status=Status.FAIL, score=round(share, 3), evidence=ev,
                      reason=words + f", above {alpha}: the model cannot tell the images apart.")
    return Signal(probe=ProbeName.CROSS_MATCH, status=Status.PASS, score=round(share, 3), reason=words + ".", evidence=ev)


def probe_template_fit(by_template: dict[str, float | None], in_use: str) -> Signal:
    """Checkpoint level: mean per-token log-likelihood of the references under each template."""
    scored = {k: v for k, v in by_template.items() if v is not None}
    if in_use not in scored or len(scored) < 2:
        return Signal(probe=ProbeName.TEMPLATE_FIT, status=Status.SKIP, reason="References could not be scored under several templates.")
    best = max(scored, key=scored.get)
    margin = scored[best] - scored[in_use]
    ev = {"in_use": in_use, "best": best, "margin_nats_per_token": round(margin, 3),
          "loglik": {k: round(v, 3) for k, v in sorted(scored.items(), key=lambda kv: -kv[1])}}
    if best != in_use and margin > TEMPLATE_MARGIN:
        return Signal(probe=ProbeName.TEMPLATE_FIT, status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"The references are {margin:.1f} nats per token more likely after template '{best}''s answer "
                             f"cue than after the one in use ({in_use}): the checkpoint was probably trained with '{best}'; "
                             f"pass --template {best} or fix its chat template.")
    return Signal(probe=ProbeName.TEMPLATE_FIT, status=Status.PASS, score=1.0, evidence=ev,
                  reason=f"The template in use ({in_use}) explains the references as well as any known template.")


def probe_likelihood(real: dict[str, float | None]) -> Signal:
    """Checkpoint level: how likely the correct references are under the real image at all."""
    vals = [v for v in real.values() if v is not None]
    if not vals:
        return Signal(probe=ProbeName.LIKELIHOOD, status=Status.SKIP, reason="No reference could be scored.")
    mean = sum(vals) / len(vals)
    ev = {"references": len(vals), "mean_loglik_nats_per_token": round(mean, 3), "threshold": LIKELIHOOD_FAIL}
    if mean < LIKELIHOOD_FAIL:
        return Signal(probe=ProbeName.LIKELIHOOD, status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"The reference answers average {mean:.1f} nats per token (threshold {LIKELIHOOD_FAIL}): "
                             "the language model cannot predict even correct answers.")
    return Signal(probe=ProbeName.LIKELIHOOD, status=Status.PASS, score=1.0, evidence=ev,
                  reason=f"The reference answers average {mean:.2f} nats per token under the real image.")
