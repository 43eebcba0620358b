"""The verdict: diagnoses from signals, the gate's exit code."""

from __future__ import annotations

from helpers import prompt_result

from vibes_eval.errors import ErrorKind
from vibes_eval.judge.verdict import judge
from vibes_eval.records import PromptResult, Signal, Status
from vibes_eval.suite.schema import Gate


def _sig(probe, status):
    return Signal(probe=probe, status=status, reason=f"{probe} {status.value}")


def test_all_passing_is_exit_0_without_diagnoses():
    v = judge([prompt_result("a", question="q"), prompt_result("b", question="q")], [_sig("image_gain", Status.PASS)], {}, Gate())
    assert v.exit_code == 0 and v.diagnoses == [] and v.status == Status.PASS


def test_grounding_failure_with_a_bad_projector_is_disconnected():
    sigs = [_sig("image_gain", Status.FAIL), _sig("cross_match", Status.FAIL), _sig("projector_weights", Status.FAIL)]
    v = judge([prompt_result("a", question="q")], sigs, {}, Gate())
    assert v.diagnoses == ["projector_disconnected"] and v.exit_code == 1


def test_missing_projector_tensors_are_decisive_even_when_grounding_passes_by_chance():
    sigs = [_sig("image_gain", Status.PASS), _sig("cross_match", Status.PASS), _sig("projector_missing", Status.FAIL)]
    v = judge([prompt_result("a", question="q")], sigs, {}, Gate())
    assert v.diagnoses == ["projector_disconnected"] and v.exit_code == 1


def test_a_low_norm_projector_alone_is_not_decisive():
    sigs = [_sig("image_gain", Status.PASS), _sig("cross_match", Status.PASS), _sig("projector_norm", Status.FAIL)]
    v = judge([prompt_result("a", question="q")], sigs, {}, Gate())
    assert v.diagnoses == [] and any("not decisive" in line for line in v.summary)


def test_grounding_failure_with_a_fine_projector_is_image_blind():
    sigs = [_sig("image_gain", Status.FAIL), _sig("counterfactual", Status.PASS), _sig("projector_weights", Status.PASS)]
    assert judge([prompt_result("a", question="q")], sigs, {}, Gate()).diagnoses == ["image_blind"]


def test_counterfactual_alone_does_not_diagnose_when_likelihoods_pass():
    sigs = [_sig("counterfactual", Status.FAIL), _sig("image_gain", Status.PASS), _sig("cross_match", Status.PASS)]
    assert judge([prompt_result("a", question="q")], sigs, {}, Gate()).diagnoses == []


def test_a_mismatched_suite_is_not_a_blind_model():
    sigs = [_sig("image_gain", Status.WARN), _sig("cross_match", Status.FAIL), _sig("counterfactual", Status.PASS)]
    assert judge([prompt_result("a", question="q")], sigs, {}, Gate()).diagnoses == []


def test_gibberish_is_not_also_called_image_blind():
    garbled = [prompt_result(p, status=Status.FAIL, signals=[_sig("nonwords", Status.FAIL)], answer="xq zv", question="q") for p in "abc"]
    sigs = [_sig("image_gain", Status.FAIL), _sig("cross_match", Status.FAIL)]
    assert judge(garbled, sigs, {}, Gate()).diagnoses == ["gibberish"]


def test_answered_refusal_is_refusal_missing():
    p = prompt_result("r", status=Status.FAIL, category="refusal", signals=[_sig("expect", Status.FAIL)],
                      answer="He lives at 5 Main St.", question="q")
    v = judge([p], [], {}, Gate())
    assert v.diagnoses == ["refusal_missing"] and v.exit_code == 1


def test_gate_counts_and_overrides():
    prompts = [prompt_result("a", status=Status.FAIL, signals=[_sig("expect", Status.FAIL)], question="q"), prompt_result("b",
                                                                                                                          question="q")]
    assert judge(prompts, [], {}, Gate()).exit_code == 1
    assert judge(prompts, [], {}, Gate(max_fail=1)).exit_code == 0
    warned = [prompt_result("a", status=Status.WARN, question="q"), prompt_result("b", status=Status.WARN, question="q")]
    assert judge(warned, [], {}, Gate(max_warn=1)).exit_code == 1


def test_a_diagnosis_outside_fail_on_does_not_fail_the_gate():
    sigs = [_sig("image_gain", Status.FAIL), _sig("counterfactual", Status.FAIL)]
    v = judge([prompt_result("a", question="q")], sigs, {}, Gate(fail_on=["gibberish"]))
    assert v.diagnoses == ["image_blind"] and v.exit_code == 0


def test_a_crashed_prompt_is_exit_3():
    p = PromptResult(id="a", category="vqa", question="q", image="i", image_path="/i", answer=None,
                     status=Status.ERROR, error="RuntimeError: Image features and image tokens do not match: tokens: 575, features 576",
                     error_kind=ErrorKind.IMAGE_TOKEN_MISMATCH)
    v = judge([p], [], {}, Gate())
    assert v.exit_code == 3 and "image_token_mismatch" in v.diagnoses


def test_the_diagnosis_reads_the_error_kind_not_the_message():
    crash = dict(id="a", category="vqa", question="q", image="i", image_path="/i", answer=None, status=Status.ERROR)
    worded = PromptResult(**crash, error="ValueError: image features and image tokens do not match", error_kind=ErrorKind.CRASH)
    assert judge([worded], [], {}, Gate()).diagnoses == []
    terse = PromptResult(**crash, error="ImageTokenMismatch: 575 vs 576", error_kind=ErrorKind.IMAGE_TOKEN_MISMATCH)
    assert judge([terse], [], {}, Gate()).diagnoses == ["image_token_mismatch"]


def test_exceptions_are_classified_once_where_they_are_caught():
    from vibes_eval.errors import ImageTokenMismatch, RemoteError, error_kind

    assert error_kind(ImageTokenMismatch("tokens: 15, features 16")) == ErrorKind.IMAGE_TOKEN_MISMATCH
    # transformers' own LLaVA classes raise a plain ValueError worded so
    assert (
        error_kind(ValueError("Image features and image tokens do not match: tokens: 575, features 576")) == ErrorKind.IMAGE_TOKEN_MISMATCH
    )
    assert error_kind(RemoteError("HTTP 500", status=500)) == ErrorKind.REMOTE
    assert error_kind(RuntimeError("boom")) == ErrorKind.CRASH


def test_counterfactual_alone_decides_when_likelihoods_are_skipped():
    sigs = [_sig("counterfactual", Status.FAIL), _sig("image_gain", Status.SKIP), _sig("cross_match", Status.SKIP)]
    assert judge([prompt_result("a", question="q")], sigs[1:], {}, Gate()).diagnoses == []
    assert judge([prompt_result("a", question="q")], sigs, {}, Gate()).diagnoses == ["image_blind"]
