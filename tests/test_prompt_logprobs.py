"""Reference likelihoods over HTTP: vLLM's prompt_logprobs shape, parsed by the client and served by `vibes-eval serve`.

The served scores must equal the in-process ones (the same forward pass, the same rendering);
a server without the extension leaves the likelihood probes skipped; a malformed answer is an
error, never a silent number.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from helpers import REPO
from httpstub import running
from test_openai import EchoAdapter, served  # EchoAdapter: a model without a processor, so serve refuses prompt_logprobs

from vibes_eval.adapters.openai.model import OpenAIAdapter
from vibes_eval.adapters.openai.prompt_logprobs import (
    ProtocolError,
    mean_answer_logprob,
    parse_prompt_logprobs,
    scoring_payload,
    split_answer,
)
from vibes_eval.records import Request

IMAGES = REPO / "suites" / "images" / "shapes"
IMAGE = IMAGES / "describe-two.png"


def ask(image: Path = IMAGE, variant: str = "real", question: str = "What color is the circle?", template=None) -> Request:
    return Request(prompt_id="p", variant=variant, image=image, question=question, template=template)


def entry(token: int, logprob: float, rank: int) -> dict:
    return {str(token): {"logprob": logprob, "rank": rank, "decoded_token": f"t{token}"}}


# --- the shapes, without a model -------------------------------------------------------------------


def test_prompt_token_is_the_one_not_ranked_first():
    data = {"prompt_logprobs": [None, entry(5, -0.5, 1), {**entry(7, -2.0, 3), **entry(9, -0.1, 1)}]}
    assert parse_prompt_logprobs(data) == [None, -0.5, -2.0]
    # the completions API puts it under choices[0]
    assert parse_prompt_logprobs({"choices": [{"prompt_logprobs": data["prompt_logprobs"]}]}) == [None, -0.5, -2.0]


@pytest.mark.parametrize("data, words", [
    ({"choices": [{"message": {"content": "hi"}}]}, "no prompt_logprobs"),
    ({"prompt_logprobs": []}, "no prompt_logprobs"),
    ({"prompt_logprobs": [None, {}]}, "prompt_logprobs[1]"),
    ({"prompt_logprobs": [None, entry(3, 0.7, 1)]}, "<= 0"),
    ({"prompt_logprobs": [None, entry(3, float("nan"), 1)]}, "<= 0"),
    ({"prompt_logprobs": [None, {"3": {"logprob": "x"}}]}, "<= 0"),
])
def test_malformed_answers_are_protocol_errors(data, words):
    with pytest.raises(ProtocolError, match=words.replace("[", r"\[")):
        parse_prompt_logprobs(data)


def test_the_answer_is_the_tail():
    assert mean_answer_logprob([None, -9.0, -1.0, -3.0], 2) == -2.0
    assert mean_answer_logprob([None, -1.0], 0) is None
    with pytest.raises(ProtocolError, match="only 3"):
        mean_answer_logprob([None, -1.0, -1.0], 3)


def test_payload_asks_for_the_answer_or_the_generation_prompt():
    with_answer = scoring_payload("m", "data:image/png;base64,AA==", "Q?", "red")
    assert with_answer["messages"][-1] == {"role": "assistant", "content": "red"}
    assert with_answer["add_generation_prompt"] is False and with_answer["prompt_logprobs"] == 1
    prefix = scoring_payload("m", "data:image/png;base64,AA==", "Q?", None)
    assert len(prefix["messages"]) == 1 and prefix["add_generation_prompt"] is True


@pytest.mark.parametrize("messages, gen, words", [
    ([{"role": "user", "content": []}], False, "final user message"),
    ([{"role": "user", "content": []}, {"role": "assistant", "content": "red"}], True, "final assistant message"),
    ([{"role": "user", "content": []}, {"role": "assistant", "content": " "}], False, "non-empty"),
    ([], True, "non-empty list"),
])
def test_server_side_split_refuses_ambiguous_conversations(messages, gen, words):
    with pytest.raises(ValueError, match=words):
        split_answer(messages, gen)


@contextmanager
def vllm_like(answer_tokens: dict[str, int], prefix_tokens: int = 6):
    """A scripted vLLM-shaped server: prompt tokens score -1 each, answer tokens -0.25 x their position."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, payload):
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            self._send({"object": "list", "data": [{"id": "m"}]})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            msgs = body["messages"]
            n = answer_tokens[msgs[-1]["content"]] if msgs[-1]["role"] == "assistant" else 0
            lps = [None] + [entry(1, -1.0, 2)] * (prefix_tokens - 1) + [entry(2 + k, -0.25 * (k + 1), 1) for k in range(n)]
            self._send({"object": "chat.completion", "choices": [{"message": {"content": ""}}], "prompt_logprobs": lps})

    with running(Handler) as url:
        yield url, seen


def test_client_scores_the_answer_tokens_and_counts_them_once_per_reference():
    with vllm_like({"red": 1, "a blue square": 3}) as (url, seen):
        adapter = OpenAIAdapter(url, "m")
        assert adapter.supports_scoring
        reqs = [ask(), ask(variant="blank"), ask(IMAGES / "color-triangle.png", "swap"), ask(question="Q2?"), ask(template="plain")]
        values = adapter.score(reqs, ["red", "red", "red", "a blue square", "red"])
    assert values == [-0.25, -0.25, -0.25, pytest.approx(-0.5), -0.25]
    answered = [b for b in seen if b["messages"][-1]["role"] == "assistant"]
    prefixes = [b for b in seen[1:] if b["messages"][-1]["role"] == "user"]  # seen[0] is the support probe
    assert len(answered) == 5 and len(prefixes) == 3  # one token count per (question, reference, template)
    assert all(b["prompt_logprobs"] == 1 and b["add_generation_prompt"] is False for b in answered)
    # the template row asks the server to render the known template instead of its own
    with_template = [b for b in answered if "chat_template" in b]
    assert len(with_template) == 1 and "{% raw %}<image>\n{% endraw %}" in with_template[0]["chat_template"]


def test_known_template_renders_as_the_in_process_scorer_scores():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from vibes_eval.adapters.openai.prompt_logprobs import template_jinja
    from vibes_eval.adapters.templates import render_template

    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}, {"type": "text", "text": "Q?"}]}]
    env = ImmutableSandboxedEnvironment()
    for name in ("llava-1.5-hf", "chatml_direct", "plain"):
        tpl = env.from_string(template_jinja(name))
        assert tpl.render(messages=msgs, eos_token="</s>") == render_template(name, "Q?")
        answered = msgs + [{"role": "assistant", "content": "red"}]
        assert tpl.render(messages=answered, eos_token="</s>") == render_template(name, "Q?") + " red</s>"


@pytest.mark.parametrize("template, words", [
    ("x" * 20000, "1 to 16,000 characters"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "TemplateTooCostly"),
    ("{{ ''.__class__.__mro__ }}", "SecurityError"),
    ("{% if %}", "TemplateSyntaxError"),
])
def test_serve_refuses_costly_or_broken_chat_templates(bench_adapter, template, words):
    import urllib.error
    import urllib.request

    from PIL import Image

    from vibes_eval.adapters.openai.model import _encode_png
    from vibes_eval.adapters.openai.prompt_logprobs import scoring_payload

    body = scoring_payload("bench", _encode_png(Image.new("RGB", (8, 8))), "Q?", None)
    body["chat_template"] = template
    with served(bench_adapter) as url:
        req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=30)
        with info.value as e:
            payload = json.loads(e.read())
    assert info.value.code == 400 and words in payload["error"]["message"]


def test_a_server_without_the_extension_leaves_scoring_off():
    with served(EchoAdapter()) as url:
        adapter = OpenAIAdapter(url, "echo")
        fp = adapter.describe()
        assert adapter.supports_scoring is False
        with pytest.raises(NotImplementedError, match="no prompt log-probabilities"):
            adapter.score([ask()], ["red"])
    assert fp["prompt_logprobs"].startswith("not offered: HTTP 400 from") and "not supported" in fp["prompt_logprobs"]




# --- a real model (random weights, llava-1.5 geometry) behind `vibes-eval serve` ------------------


@pytest.fixture(scope="module")
def bench_adapter(tmp_path_factory):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.toy.bench import build_bench

    ckpt = build_bench(tmp_path_factory.mktemp("bench") / "bench", new_tokens=4)
    return HFAdapter(ckpt, detect(ckpt))


def test_served_scores_equal_the_in_process_ones(bench_adapter):
    reqs = [ask(), ask(variant="blank"), ask(IMAGES / "color-triangle.png", "swap"), ask(question="How many shapes?")]
    targets = ["a red circle", "a red circle", "a red circle", "two"]
    direct = bench_adapter.score(reqs, targets)
    with served(bench_adapter) as url:
        over_http = OpenAIAdapter(url, "bench").score(reqs, targets)
    assert all(v is not None for v in direct)
    assert over_http == pytest.approx(direct, abs=2e-3)
    assert len(set(round(v, 4) for v in direct)) > 1  # the rows differ: the comparison is not trivially equal
