"""The Adapter interface, the loader registry, open_adapter and the error model.

Runs without the toy zoo: FakeAdapter (tests/helpers.py) stands in for a model, and a loader
registered in one line opens a folder that holds nothing but a config.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SHAPES, FakeAdapter

from vibes_eval.adapters import registry
from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.adapters.opening import open_adapter, plan_adapter
from vibes_eval.api import evaluate
from vibes_eval.errors import (
    EXIT_EVAL,
    EXIT_GATE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CheckpointError,
    RemoteError,
    SuiteError,
    UsageError,
    VibesError,
    exit_code_for,
    one_line,
)
from vibes_eval.records import Status
from vibes_eval.suite.schema import load_suite

# -- the error model -------------------------------------------------------------------------------


def test_every_error_maps_to_its_exit_code_in_one_place():
    assert exit_code_for(UsageError("x")) == EXIT_USAGE == 2
    assert exit_code_for(SuiteError("x")) == EXIT_USAGE
    assert exit_code_for(CheckpointError("x")) == EXIT_EVAL == 3
    assert exit_code_for(RemoteError("x", status=500)) == EXIT_EVAL
    assert exit_code_for(RuntimeError("internal")) == EXIT_EVAL
    assert exit_code_for(KeyboardInterrupt()) == EXIT_INTERRUPTED == 130
    assert (EXIT_OK, EXIT_GATE) == (0, 1)
    # the older names are the same classes, and a usage error is still a ValueError
    from vibes_eval.errors import BudgetError, CompareError
    from vibes_eval.errors import CheckpointError as DetectCheckpointError
    from vibes_eval.errors import SuiteError as SuiteSuiteError

    assert DetectCheckpointError is CheckpointError and SuiteSuiteError is SuiteError
    assert issubclass(BudgetError, UsageError) and issubclass(CompareError, UsageError)
    assert issubclass(UsageError, ValueError) and issubclass(CheckpointError, VibesError)


def test_one_line_quotes_type_and_first_line():
    assert one_line(OSError("disk full\ntraceback follows")) == "OSError: disk full"
    assert one_line(ValueError()) == "ValueError"
    assert one_line(ValueError("\n\nlate start")) == "ValueError: late start"
    assert one_line(KeyError("k"), with_type=False) == "'k'"


# -- the registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(registry.LOADERS))
def test_every_registered_loader_is_an_adapter_named_after_its_entry(name):
    cls = registry.loader_class(name)
    assert issubclass(cls, Adapter) and cls.loader == name


def test_unknown_loader_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown loader 'nope'; known: hf"):
        registry.loader_class("nope")


def test_importing_the_registry_and_open_adapter_loads_no_torch():
    code = "import sys, vibes_eval.adapters.registry, vibes_eval.adapters.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_capabilities_are_declared_not_probed():
    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.adapters.openai.model import OpenAIAdapter

    assert (HFAdapter.supports_scoring, HFAdapter.supports_templates, HFAdapter.needs_checkpoint) == (True, True, True)
    assert OpenAIAdapter.needs_checkpoint is False
    # a server's scoring (and with it the template sweep, sent as vLLM's chat_template field) is decided
    # per instance, once, while it opens: never a property that talks to the server when read
    assert not any(isinstance(OpenAIAdapter.__dict__.get(c), property) for c in ("supports_scoring", "supports_templates"))
    assert HFAdapter.supports_prompt_logprobs and not OpenAIAdapter.supports_prompt_logprobs



class ToyLoader(Adapter):
    """A throwaway loader: one module (here, this test), one registry line, one profile."""

    loader = "toy_test"
    supports_scoring = False

    def __init__(self, detection, spec):
        self.detection, self.spec = detection, spec
        self.checkpoint = spec.checkpoint

    @classmethod
    def open(cls, spec, detection, profile):
        return cls(detection, spec)

    def generate(self, requests):
        from vibes_eval.records import Response

        return [Response(prompt_id=r.prompt_id, variant=r.variant, text="a red circle") for r in requests]

    def score(self, requests, targets):
        raise NotImplementedError

    def describe(self, sample_images=None):
        return {"architecture": self.detection.architecture, "loader": self.loader}


@pytest.fixture
def toy_loader(tmp_path, monkeypatch):
    """A checkpoint folder of a made-up architecture and the profile that maps it to ToyLoader."""
    monkeypatch.setitem(registry.LOADERS, "toy_test", f"{__name__}:ToyLoader")  # the one registry line
    profile = tmp_path / "toy-test.yaml"
    profile.write_text("name: toy-test\nloader: toy_test\narchitectures: [ToyTestForConditionalGeneration]\n")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(
        json.dumps({"architectures": ["ToyTestForConditionalGeneration"], "model_type": "toy"})
    )
    return ckpt, profile


def test_a_new_loader_is_one_registry_line_and_one_profile(toy_loader):
    ckpt, profile = toy_loader
    adapter = open_adapter(AdapterSpec(checkpoint=ckpt, adapter=str(profile)))
    assert isinstance(adapter, ToyLoader)
    assert adapter.detection.config["model_type"] == "toy"  # config.json read once, by detection
    assert adapter.describe() == {"architecture": "ToyTestForConditionalGeneration", "loader": "toy_test"}
    sc = evaluate(adapter, load_suite(SHAPES), label=str(ckpt))
    assert {s.probe: s.status for s in sc.signals}["image_gain"] == Status.SKIP  # supports_scoring False


def test_a_profile_naming_no_registered_loader_is_refused(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("name: bad\nloader: nowhere\narchitectures: []\n")
    with pytest.raises(UsageError, match=r"bad.yaml: loader: .*unknown loader 'nowhere'"):
        plan_adapter(AdapterSpec(checkpoint=tmp_path, adapter=str(profile)))


def test_usage_is_checked_before_the_checkpoint(tmp_path):
    with pytest.raises(UsageError, match="--template: unknown template 'nope'"):
        plan_adapter(AdapterSpec(checkpoint=tmp_path / "missing", template="nope"))
    with pytest.raises(CheckpointError, match="checkpoint directory not found"):
        plan_adapter(AdapterSpec(checkpoint=tmp_path / "missing"))


def test_loader_options_are_refused_by_loaders_that_cannot_use_them(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlavaForConditionalGeneration"]}))
    with pytest.raises(UsageError, match="--base/--vision-tower: only for original LLaVA repo checkpoints"):
        plan_adapter(AdapterSpec(checkpoint=tmp_path, base=tmp_path))
    with pytest.raises(UsageError, match="--template: not available with --adapter openai"):
        plan_adapter(AdapterSpec(base_url="http://127.0.0.1:9", model="m", template="vicuna_v1"))
    plan = plan_adapter(AdapterSpec(checkpoint=tmp_path))
    assert (
        plan.profile.name == "llava"
        and plan.cls.loader == "hf"
        and plan.detection.architecture == "LlavaForConditionalGeneration"
    )


# -- the runner with FakeAdapter --------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes():
    return load_suite(SHAPES)


@pytest.mark.parametrize(
    "mode, code, diagnoses",
    [
        ("healthy", 0, []),
        ("blind", 1, ["image_blind"]),
        ("zero-projector", 1, ["projector_disconnected"]),
        ("gibberish", 1, ["gibberish", "refusal_missing"]),
    ],  # non-words answer the refusal prompts too
)
def test_fake_models_get_the_verdicts_of_their_failures(shapes, mode, code, diagnoses):
    sc = evaluate(FakeAdapter(shapes, mode), shapes, label=mode)
    assert (sc.verdict.exit_code, sc.verdict.diagnoses) == (code, diagnoses), sc.verdict.summary


def test_an_adapter_without_scoring_is_never_asked_to_score(shapes):
    fake = FakeAdapter(shapes, scoring=False)
    sc = evaluate(fake, shapes, label="remote")
    assert [c for c, _ in fake.calls] == ["generate"]
    sig = {s.probe: s for s in sc.signals}
    assert all(sig[n].status == Status.SKIP for n in ("image_gain", "cross_match", "likelihood", "template_fit"))
    assert sig["counterfactual"].status == Status.PASS and sc.verdict.exit_code == 0


def test_a_crashing_model_is_an_error_not_an_empty_answer(shapes):
    sc = evaluate(FakeAdapter(shapes, crash=RuntimeError("CUDA out of memory")), shapes, label="oom")
    assert sc.verdict.exit_code == EXIT_EVAL and sc.verdict.status == Status.ERROR
    assert all(p.answer is None and "CUDA out of memory" in p.error for p in sc.prompts)


def test_an_image_token_mismatch_is_named_through_a_server_too(shapes):
    """`serve` sends the crash's kind as the error code; the openai adapter reads it back, the verdict names it."""
    from vibes_eval.adapters.openai.model import OpenAIAdapter
    from vibes_eval.errors import ErrorKind, ImageTokenMismatch
    from vibes_eval.serve.server import serve

    fake = FakeAdapter(
        shapes, crash=ImageTokenMismatch("Image features and image tokens do not match: tokens: 15, features 16")
    )
    fake.checkpoint = Path("fake")
    server, thread = serve(fake, "127.0.0.1", 0)
    try:
        client = OpenAIAdapter(f"http://127.0.0.1:{server.server_address[1]}", "fake", tries=1)
        sc = evaluate(client, shapes, label="served")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert all(p.error_kind == ErrorKind.IMAGE_TOKEN_MISMATCH for p in sc.prompts)
    assert "image_token_mismatch" in sc.verdict.diagnoses and sc.verdict.exit_code == EXIT_EVAL


def test_a_new_checkpoint_probe_is_one_registration(shapes, monkeypatch):
    from vibes_eval.judge import registry
    from vibes_eval.judge.evidence import Need
    from vibes_eval.records import Signal

    monkeypatch.setattr(registry, "PROBES", dict(registry.PROBES))

    @registry.checkpoint_probe("blank_gap", Need.COUNTERFACTUALS, Need.LIKELIHOODS)
    def blank_gap(ev):
        worst_blank = min(v for v in ev.blank.values() if v is not None)
        return Signal(probe="blank_gap", status=Status.PASS, score=1.0, reason="ok", evidence={"worst": worst_blank})

    sc = evaluate(FakeAdapter(shapes), shapes, label="fake")
    assert sc.signals[-1].probe == "blank_gap" and sc.signals[-1].evidence == {"worst": -1.0}
    skipped = evaluate(FakeAdapter(shapes, scoring=False), shapes, label="fake").signals[-1]
    assert (skipped.probe, skipped.status) == ("blank_gap", Status.SKIP) and "log-likelihoods" in skipped.reason
    ungrounded = evaluate(FakeAdapter(shapes), shapes, label="fake", grounding=False)
    assert "blank_gap" not in {s.probe for s in ungrounded.signals}


def test_a_crashing_checkpoint_probe_is_an_error_signal_and_the_checkpoint_is_not_judged(shapes, monkeypatch):
    from vibes_eval.judge import registry
    from vibes_eval.judge.evidence import Need

    monkeypatch.setattr(registry, "PROBES", dict(registry.PROBES))

    @registry.checkpoint_probe("exploding", Need.COUNTERFACTUALS)
    def exploding(ev):
        raise ZeroDivisionError("division by zero")

    sc = evaluate(FakeAdapter(shapes), shapes, label="fake")
    crashed = [s for s in sc.signals if s.probe == "exploding"]
    assert [(s.status, s.reason) for s in crashed] == [(Status.ERROR, "The exploding probe crashed: ZeroDivisionError: division by zero")]
    assert sc.prompts and {s.probe for s in sc.signals} >= {"image_gain", "cross_match"}  # the others still ran
    # as a crashed answer probe makes its prompt ERROR, a crashed checkpoint probe leaves the checkpoint unjudged: exit 3
    assert (sc.verdict.status, sc.verdict.exit_code) == (Status.ERROR, 3)
    assert "could not be judged: The exploding probe crashed" in sc.verdict.summary[-1]


def test_whatever_a_loader_raises_is_one_checkpoint_error_line(toy_loader, monkeypatch):
    ckpt, profile = toy_loader

    def explode(cls, spec, detection, profile):
        raise ImportError("No module named 'sentencepiece'\nmore")

    monkeypatch.setattr(ToyLoader, "open", classmethod(explode))
    with pytest.raises(CheckpointError) as e:
        open_adapter(AdapterSpec(checkpoint=ckpt, adapter=str(profile)))
    # loaders/failures.load_failure words it: the folder, "cannot load", and the package to install
    assert str(e.value).startswith(f"{ckpt}: cannot load") and "sentencepiece" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("argv, line", [
    (["--quantize", "4bit", "--device", "cpu"], "--quantize 4bit: bitsandbytes quantizes on a CUDA GPU; this run is on cpu"),
    (["--quantize", "8bit"], "--quantize 8bit: bitsandbytes quantizes on a CUDA GPU; this run is on cpu"),
])
def test_quantize_without_a_gpu_is_one_usage_line_before_anything_loads(zoo_dir, tmp_path, capsys, argv, line):
    """`--quantize` needs CUDA and bitsandbytes (neither is on these machines): exit 2 in one line, no scorecard.
    The GPU path itself (BitsAndBytesConfig passed to from_pretrained, `quantize` in the fingerprint) needs a GPU."""
    import torch

    from vibes_eval.cli.main import main

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the quantized load itself is the GPU check's (bench/gpu.sh)")
    assert main(["run", str(zoo_dir / "healthy"), "--out", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"vibes-eval: {line}"] and not (tmp_path / "r" / "scorecard.json").exists()  # nothing was loaded


def test_quantize_is_refused_where_it_cannot_apply():
    from vibes_eval.errors import UsageError
    from vibes_eval.options import RunOptions

    with pytest.raises(UsageError, match="quantize: '2bit' is not one of 4bit, 8bit"):
        RunOptions(quantize="2bit")
    with pytest.raises(UsageError, match="--quantize: only for transformers-native checkpoints"):
        from vibes_eval.adapters.openai.model import OpenAIAdapter

        OpenAIAdapter.check_spec(AdapterSpec(base_url="http://127.0.0.1:9", model="m", quantize="4bit"), None)
