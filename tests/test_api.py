"""`vibes_eval.api.evaluate`: the library entry point, with FakeAdapter (no zoo)."""

from __future__ import annotations

import json

import pytest
from helpers import SHAPES, FakeAdapter

from vibes_eval.api import evaluate
from vibes_eval.errors import CheckpointError, EvaluationFailed, SuiteError, UsageError
from vibes_eval.records import Scorecard, Status
from vibes_eval.report.files import write_reports
from vibes_eval.suite.schema import load_suite


@pytest.fixture(scope="module")
def shapes():
    return load_suite(SHAPES)


def test_an_open_adapter_is_evaluated_and_the_scorecard_round_trips(shapes, tmp_path):
    sc = evaluate(FakeAdapter(shapes), SHAPES, label="fake")
    assert isinstance(sc, Scorecard) and sc.checkpoint == "fake" and sc.suite["name"] == "shapes"
    assert sc.verdict.exit_code == 0 and len(sc.prompts) == 10
    write_reports(sc, tmp_path / "r")
    saved = Scorecard.model_validate_json((tmp_path / "r" / "scorecard.json").read_text())
    assert saved.run_id and saved.model_copy(update={"run_id": None}) == sc  # write_reports stamps the run id


def test_gate_overrides_apply_to_this_run_only(shapes):
    sc = evaluate(FakeAdapter(shapes, "blind"), shapes, max_fail=5)
    assert sc.verdict.exit_code == 1 and "gate allows 5" in sc.verdict.summary[-1]
    assert shapes.gate.max_fail == 0


def test_without_grounding_nothing_is_scored(shapes):
    fake = FakeAdapter(shapes)
    sc = evaluate(fake, shapes, grounding=False)
    assert fake.calls == [("generate", 10)]
    assert not {"image_gain", "counterfactual"} & {s.probe for s in sc.signals}


def test_progress_is_reported_per_stage(shapes):
    seen = []
    evaluate(FakeAdapter(shapes), shapes, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("answers", 10, 10) in seen and ("likelihoods", 0, seen[-1][2]) in seen


def test_a_checkpoint_that_cannot_load_raises_with_the_scorecard_that_says_so(tmp_path):
    with pytest.raises(EvaluationFailed) as e:
        evaluate(tmp_path / "missing", SHAPES)
    assert isinstance(e.value, CheckpointError)
    sc = e.value.scorecard
    assert sc.verdict.exit_code == 3 and sc.verdict.diagnoses == ["load_error"] and "not found" in sc.verdict.summary[0]
    assert sc.suite["name"] == "shapes" and sc.prompts == []


def test_a_crash_inside_the_run_is_evaluation_failed_not_a_traceback(shapes):
    class Broken(FakeAdapter):
        def describe(self, sample_images=None):
            raise RuntimeError("fingerprint exploded\nsecond line")

    with pytest.raises(EvaluationFailed) as e:
        evaluate(Broken(shapes), shapes, label="broken")
    assert e.value.scorecard.verdict.summary == ["broken: evaluation failed: RuntimeError: fingerprint exploded"]
    assert e.value.scorecard.verdict.status == Status.ERROR and e.value.scorecard.verdict.diagnoses == []


def test_usage_errors_come_before_anything_is_loaded(tmp_path):
    with pytest.raises(UsageError, match="--template: unknown template"):
        evaluate(tmp_path / "missing", SHAPES, template="nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprompts: []\n")
    with pytest.raises(SuiteError):
        evaluate(tmp_path / "missing", bad)
    with pytest.raises(TypeError, match="need a checkpoint"):
        evaluate(FakeAdapter(load_suite(SHAPES)), SHAPES, device="cpu")


def test_demo_and_bench_call_evaluate_not_the_command_line():
    from helpers import REPO

    for path in (REPO / "vibes_eval" / "cli" / "demo.py", REPO / "bench" / "detection.py"):
        text = path.read_text()
        assert "evaluate(" in text and "cli" not in text and "scorecard.json" not in text, path
    json.dumps({})  # (json imported for the round trip above)


def test_run_options_and_the_adapter_spec_share_every_loader_field():
    """RunOptions mirrors the loader's fields as flat options (as `run`'s flags are); LOADER_FIELDS is the one list."""
    import dataclasses

    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.options import LOADER_FIELDS, RunOptions

    spec_fields = {f.name for f in dataclasses.fields(AdapterSpec)} - {"checkpoint", "options"}
    assert set(LOADER_FIELDS) == spec_fields
    assert set(LOADER_FIELDS) <= {f.name for f in dataclasses.fields(RunOptions)}
    spec = RunOptions(device="cpu", template="vicuna_v1", batch_size=4).spec(None)
    assert (spec.device, spec.template, spec.batch_size, spec.checkpoint) == ("cpu", "vicuna_v1", 4, None)
    with pytest.raises(TypeError, match="unknown option 'devise'"):
        RunOptions().replace(devise="cpu")


def test_run_options_convert_and_check_values_as_the_flags_do():
    from pathlib import Path

    from vibes_eval.options import RunOptions

    opts = RunOptions(batch_size="4", timeout="2.5", suite="shapes", max_fail=0)
    assert (opts.batch_size, opts.timeout, opts.suite, opts.max_fail) == (4, 2.5, Path("shapes"), 0)
    for bad, match in ((dict(batch_size=0), "batch_size: must be at least 1"), (dict(dtype="fp8"), "dtype: 'fp8' is not one of"),
                       (dict(concurrency=True), "concurrency: expected a whole number, got True"),
                       (dict(max_warn="many"), "max_warn: expected a whole number")):
        with pytest.raises(UsageError, match=match):
            RunOptions(**bad)
    with pytest.raises(TypeError, match="options must be a RunOptions, not dict"):
        evaluate("ckpt/", options={"device": "cpu"})


def test_prefix_cache_is_an_option_as_before(shapes):
    from vibes_eval.adapters.base import AdapterSpec

    with pytest.raises(TypeError, match=r"loader options \(prefix_cache\) go into the AdapterSpec itself"):
        evaluate(AdapterSpec(checkpoint=None), shapes, prefix_cache=False)
