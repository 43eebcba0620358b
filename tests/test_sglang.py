"""The SGLang adapter (SGLang's native /generate) against a faithful test double over the toy zoo.

No SGLang runs here: `tests/sglang_double.py` answers SGLang's request and response shapes (read
from sgl-project/sglang) with the toy's own log-probabilities, and can shift the image-token offset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SHAPES

from vibes_eval.adapters.openai.prompt_logprobs import ProtocolError
from vibes_eval.adapters.sglang import native
from vibes_eval.records import Status

LIKELIHOOD_PROBES = ("image_gain", "cross_match", "likelihood", "template_fit")


# -- the offset check on hand-made answers --------------------------------------------------------------

TEXT = [1, 10, 11, 99, 12, 13, 20, 21]  # bos, 2 text tokens, the placeholder (99), 2 text tokens, a 2-token answer
PAD = 777_000


def _answer(ids, values=None, prompt_tokens=None):
    values = values if values is not None else [None] + [-0.5] * (len(ids) - 1)
    return {"text": "", "meta_info": {"prompt_tokens": len(ids) if prompt_tokens is None else prompt_tokens,
                                      "input_token_logprobs": [[v, t, None] for v, t in zip(values, ids)]}}


def test_a_reference_after_the_image_at_its_placeholder_is_scored():
    ids = [1, 10, 11] + [PAD] * 5 + [12, 13, 20, 21]
    values = [None] + [-0.1] * 9 + [-1.0, -3.0]
    assert native.checked_answer_logprob(_answer(ids, values), TEXT, 99, 2) == (-2.0, 5)


@pytest.mark.parametrize("ids, prompt_tokens, words", [
    ([1, 10, 11, 12] + [PAD] * 5 + [13, 20, 21], None, "not where its placeholder is"),  # the image one token late
    ([1, 10] + [PAD] * 5 + [11, 12, 13, 20, 21], None, "not where its placeholder is"),  # one token early
    ([1, 10, 11] + [PAD] * 5 + [12, 13, 20, 21], 30, "for a prompt of 30 tokens"),  # counts that disagree
    ([1, 10, 11, 12, 13, 20, 21], None, "not where its placeholder is"),  # no image position at all
])
def test_a_drifted_image_offset_is_refused(ids, prompt_tokens, words):
    with pytest.raises(native.DriftError, match=words):
        native.checked_answer_logprob(_answer(ids, prompt_tokens=prompt_tokens), TEXT, 99, 2)


@pytest.mark.parametrize("data, words", [
    ({"text": ""}, "no meta_info.input_token_logprobs"),
    (_answer([1, 10, 11] + [PAD] * 5 + [12, 13, 20, 21], [None] * 12), "null logprob inside the reference"),
    (_answer([1, 10, 11] + [PAD] * 5 + [12, 13, 20, 21], [None] + [0.5] * 11), "must be a number <= 0"),
])
def test_malformed_answers_are_protocol_errors(data, words):
    with pytest.raises(ProtocolError, match=words):
        native.checked_answer_logprob(data, TEXT, 99, 2)


def test_generation_answers_read_sglang_finish_reasons():
    assert native.parse_generation({"text": " red", "meta_info": {"finish_reason": {"type": "length", "length": 4},
                                                                  "completion_tokens": 4}}) == (" red", "length", 4, None)
    assert native.parse_generation({"text": "red", "meta_info": {"finish_reason": {"type": "stop", "matched": 2}}})[1] == "eos"
    text, finish, _, why = native.parse_generation({"text": "", "meta_info": {"finish_reason": {"type": "abort", "message": "oom"}}})
    assert finish == "error" and "aborted" in why and "oom" in why


# -- the toy behind the double -----------------------------------------------------------------------


def _hf(ckpt: Path):
    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.adapters.opening import open_adapter

    return open_adapter(AdapterSpec(checkpoint=ckpt, prefix_cache=False))


def _run(ckpt: Path, drift: int = 0):
    from sglang_double import SGLangDouble

    from vibes_eval.api import evaluate
    from vibes_eval.suite.schema import load_suite

    hf = _hf(ckpt)
    with SGLangDouble(hf, ckpt.name, drift=drift) as url:
        from vibes_eval.adapters.base import AdapterSpec

        sc = evaluate(AdapterSpec(base_url=url, model=ckpt.name, adapter="sglang"), load_suite(SHAPES), label=url)
    return sc, hf


@pytest.fixture(scope="module")
def healthy(zoo_dir):
    return _run(zoo_dir / "healthy")


def test_healthy_passes_with_image_gain_and_cross_match_over_sglang(healthy):
    sc, hf = healthy
    sig = {s.probe: s for s in sc.signals}
    for name in LIKELIHOOD_PROBES + ("counterfactual",):
        assert sig[name].status == Status.PASS, (name, sig[name].reason)
    assert sig["image_gain"].score > 0.5 and sig["cross_match"].evidence["p_value"] < 0.01
    assert sc.verdict.exit_code == 0 and sc.verdict.diagnoses == [], sc.verdict.summary
    fp = sc.fingerprint
    assert fp["loader"] == "sglang" and fp["template"] == "llava-1.5-hf" and "llava family" in fp["template_source"]
    assert fp["prompt_logprobs"].startswith("offered") and "16 positions" in fp["prompt_logprobs"]
    assert all(p.error is None and p.answer for p in sc.prompts)


def test_sglang_scores_equal_the_in_process_ones(healthy, zoo_dir):
    from vibes_eval.api import evaluate
    from vibes_eval.suite.schema import load_suite

    sc, _ = healthy
    over = {s.probe: s for s in sc.signals}
    here = evaluate(zoo_dir / "healthy", load_suite(SHAPES))  # in-process, its own (shared-prefix) path
    local = {s.probe: s for s in here.signals}
    for name in ("image_gain", "cross_match", "likelihood"):
        assert over[name].score == pytest.approx(local[name].score, abs=1e-3), name
    assert [(p.answer, p.variants) for p in sc.prompts] == [(p.answer, p.variants) for p in here.prompts]


def test_image_blind_is_diagnosed_over_sglang(zoo_dir):
    sc, _ = _run(zoo_dir / "image-blind")
    sig = {s.probe: s for s in sc.signals}
    assert sig["image_gain"].status == Status.FAIL and sig["image_gain"].score is not None, sig["image_gain"].reason
    assert sig["cross_match"].score is not None  # reported, whatever it decides
    assert "image_blind" in sc.verdict.diagnoses and sc.verdict.exit_code == 1, sc.verdict.summary


def test_a_drifted_image_offset_skips_the_likelihood_probes_with_the_reason(zoo_dir):
    sc, _ = _run(zoo_dir / "healthy", drift=2)
    sig = {s.probe: s for s in sc.signals}
    for name in LIKELIHOOD_PROBES:
        assert sig[name].status == Status.SKIP and sig[name].score is None, (name, sig[name])
        assert "image-token offset drifted" in sig[name].reason and "placeholder" in sig[name].reason
    assert sc.fingerprint["prompt_logprobs"].startswith("not trusted")
    assert sig["counterfactual"].status == Status.PASS  # the answers still run


def test_base_url_alone_finds_sglang_and_no_template_is_exit_2(zoo_dir, tmp_path, capsys):
    from sglang_double import SGLangDouble

    from vibes_eval.cli.main import main

    hf = _hf(zoo_dir / "healthy")
    with SGLangDouble(hf, "healthy") as url:
        code = main(["run", "--base-url", url, "--model", "healthy", "--suite", str(SHAPES), "--out", str(tmp_path / "r"),
                     "--quiet"])
        assert code == 0
        assert "the server is SGLang" in capsys.readouterr().err
        with SGLangDouble(hf, "healthy", architectures=("Qwen2ForCausalLM",)) as other:
            code = main(["run", "--adapter", "sglang", "--base-url", other, "--model", "healthy", "--suite", str(SHAPES),
                         "--out", str(tmp_path / "q"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Qwen2ForCausalLM" in err[0] and "--template" in err[0], err
