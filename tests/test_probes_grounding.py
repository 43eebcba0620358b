"""Grounding and loader probes are pure functions: literal numbers in, signals out."""

from __future__ import annotations

import pytest

from vibes_eval.probes import grounding, loader
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
    assert sig.status == Status.FAIL and sig.evidence["rate"] == pytest.approx(0.25)
    sharp = {r: {i: (-0.1 if i == r else -5.0) for i in "abcd"} for r in "abcd"}
    assert grounding.probe_cross_match(sharp).status == Status.PASS


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
