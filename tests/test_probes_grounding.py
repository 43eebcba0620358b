"""Grounding and loader probes are pure functions: literal numbers in, signals out."""

from __future__ import annotations

import itertools
import random

import pytest

from vibes_eval.probes import grounding
from vibes_eval.probes import projector as loader
from vibes_eval.records import Status


@pytest.mark.parametrize("a, b, low, high", [("red", "red", 1.0, 1.0), ("A red circle.", "a red circle", 1.0, 1.0),
                                             ("red", "blue", 0.0, 0.0), ("a red circle on the left", "a red square on the left", 0.6, 0.9)])
def test_similarity(a, b, low, high):
    assert low <= grounding.similarity(a, b) <= high


def test_counterfactual_fails_when_answers_ignore_the_image():
    real = {"a": "red", "b": "two", "c": "a red circle"}
    sig = grounding.probe_counterfactual(real, dict(real), dict(real))
    assert sig.status == Status.FAIL and "3/3" in sig.reason


def test_counterfactual_passes_when_answers_follow_the_image():
    sig = grounding.probe_counterfactual({"a": "red", "b": "two"}, {"a": "blue", "b": "one"}, {"a": "green", "b": "one"})
    assert sig.status == Status.PASS


@pytest.mark.parametrize("matrix, blank, status", [
    ({"a": {"a": -0.1, "b": -3.0}, "b": {"a": -2.9, "b": -0.2}}, {"a": -3.0, "b": -2.5}, Status.PASS),
    ({"a": {"a": -2.0, "b": -2.0}, "b": {"a": -2.0, "b": -2.0}}, {"a": -2.0, "b": -2.1}, Status.FAIL),
    # references paired with the wrong images: the model sees, the suite is mismatched
    ({"a": {"a": -3.0, "b": -0.1, "c": -3.5}, "b": {"a": -0.2, "b": -2.9, "c": -3.1}}, {"a": -3.0, "b": -2.5}, Status.WARN),
    # a noisy image path: some image helps a little by chance, no structure
    ({"a": {"a": -3.0, "b": -2.0, "c": -2.6}, "b": {"a": -2.2, "b": -2.9, "c": -2.5}}, {"a": -2.5, "b": -2.5}, Status.FAIL),
    ({"a": {"a": None}}, {"a": -1.0}, Status.SKIP),
])
def test_image_gain(matrix, blank, status):
    assert grounding.probe_image_gain(matrix, blank).status == status


def test_cross_match_counts_ties_as_chance():
    flat = {r: {i: -1.0 for i in "abcd"} for r in "abcd"}
    sig = grounding.probe_cross_match(flat)
    assert sig.status == Status.FAIL and sig.evidence["share"] == pytest.approx(0.5) and sig.evidence["p_value"] == 1.0
    sharp = {r: {i: (-0.1 if i == r else -5.0) for i in "abcd"} for r in "abcd"}
    sig = grounding.probe_cross_match(sharp)
    assert sig.status == Status.PASS and sig.evidence["p_value"] == pytest.approx(0.25**4, rel=6e-3)


def test_cross_match_two_of_eight_is_not_enough():
    """The old rule passed 2 hits of 8 (2x chance): a blind model does that about a quarter of the time."""
    ids = [f"r{i}" for i in range(8)]
    rows = {r: {j: -float((k - i) % 8) * 0.1 - 1.0 for k, j in enumerate(ids)} for i, r in enumerate(ids)}
    for r in ids[2:]:  # the own image ranked in the middle: chance
        rows[r][r] = sorted(rows[r].values())[3]
    sig = grounding.probe_cross_match(rows)
    assert sig.evidence["top1_rate"] >= 0.25 and sig.status == Status.FAIL


def _brute_force_p(matrix):
    """P(rank sum >= observed) when each row's own value is any of the row's values with equal chance."""
    rows = []
    for r, row in matrix.items():
        own, others = row[r], [v for j, v in row.items() if j != r]
        got, null = grounding._doubled_ranks(own, others)
        rows.append((got, null))
    observed = sum(g for g, _ in rows)
    hits = total = 0
    for combo in itertools.product(*(null for _, null in rows)):
        total += 1
        hits += sum(combo) >= observed
    return hits / total


@pytest.mark.parametrize("seed", range(6))
def test_cross_match_p_value_is_the_exact_permutation_tail(seed):
    rng = random.Random(seed)
    ids = "abcde"
    # values on a coarse grid: ties (which count half) happen often
    matrix = {r: {j: rng.choice([-1.0, -1.5, -2.0, -2.5]) + (1.0 if j == r and seed % 2 else 0.0) for j in ids} for r in ids}
    sig = grounding.probe_cross_match(matrix)
    assert sig.evidence["p_value"] == pytest.approx(_brute_force_p(matrix), rel=6e-3)


def test_comparison_plan_is_bounded_symmetric_and_fixed():
    keys = [f"images/{i:03d}.png" for i in range(40)]
    plan = grounding.comparison_plan(keys, k=8)
    assert plan == grounding.comparison_plan(list(reversed(keys)), k=8)  # fixed: the same whatever the order given
    assert all(len(v) == 8 and a not in v and len(set(v)) == 8 for a, v in plan.items())
    assert all(a in plan[b] for a, v in plan.items() for b in v)  # symmetric
    small = grounding.comparison_plan(keys[:9], k=8)
    assert all(sorted(v) == sorted(set(keys[:9]) - {a}) for a, v in small.items())  # all the others when they fit


def test_template_fit_names_the_better_template():
    sig = grounding.probe_template_fit({"checkpoint": -4.0, "llava-1.5-hf": -0.3, "plain": -3.0}, "checkpoint")
    assert sig.status == Status.FAIL and "llava-1.5-hf" in sig.reason and sig.evidence["best"] == "llava-1.5-hf"
    assert grounding.probe_template_fit({"checkpoint": -0.3, "llava-1.5-hf": -0.3}, "checkpoint").status == Status.PASS


def test_likelihood_fails_on_unpredictable_references():
    assert grounding.probe_likelihood({"a": -7.0, "b": -6.0}).status == Status.FAIL
    assert grounding.probe_likelihood({"a": -0.2}).status == Status.PASS


def _fp(**proj):
    return {"projector": {"found": True, "missing": [], "all_zero": False, "nonfinite": 0, **proj}}


@pytest.mark.parametrize("fp, probe, status", [
    (_fp(missing=["model.multi_modal_projector.linear_1.weight"]), "projector_missing", Status.FAIL),
    (_fp(), "projector_missing", Status.PASS),
    (_fp(all_zero=True), "projector_weights", Status.FAIL),
    (_fp(nonfinite=3), "projector_weights", Status.FAIL),
    (_fp(norm_ratio=0.0), "projector_norm", Status.FAIL),
    (_fp(norm_ratio=12.0), "projector_norm", Status.PASS),
    (_fp(between_image_spread=0.0), "collapse", Status.FAIL),
    (_fp(between_image_spread=0.2), "collapse", Status.PASS),
    ({}, "collapse", Status.SKIP),
])
def test_loader_probes(fp, probe, status):
    got = {s.probe: s for s in loader.run_loader_probes(fp)}
    assert got[probe].status == status
