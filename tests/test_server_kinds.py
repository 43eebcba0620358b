"""What each server kind's chat completions say about prompt log-probabilities with an image (vLLM, SGLang)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from httpstub import NO_PROMPT_LOGPROBS, running

from vibes_eval.adapters.openai.model import OpenAIAdapter


def _server(owner: str):
    """A chat-completions server that lists its model as `owner`'s and refuses prompt_logprobs for an image prompt."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            self._send(200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": owner}]})

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("prompt_logprobs") is not None:
                self._send(400, NO_PROMPT_LOGPROBS)
            else:
                self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "red"},
                                              "finish_reason": "stop"}], "usage": {"completion_tokens": 1}})

    return running(Handler)


@pytest.mark.parametrize("owner, words", [
    ("vllm", "vLLM returns prompt log-probabilities for text prompts only"),
    ("sglang", "use --adapter sglang"),
])
def test_the_skip_reason_names_the_servers_limitation(owner, words):
    from helpers import SHAPES

    from vibes_eval.api import evaluate
    from vibes_eval.records import Status
    from vibes_eval.suite.schema import load_suite

    with _server(owner) as url:
        adapter = OpenAIAdapter(url, "m")
        assert adapter.supports_scoring is False and words in adapter.scoring_note
        sc = evaluate(adapter, load_suite(SHAPES), label=url)
    sig = {s.probe: s for s in sc.signals}
    for name in ("image_gain", "cross_match", "likelihood", "template_fit"):
        assert sig[name].status == Status.SKIP and words in sig[name].reason, sig[name]


def test_an_unknown_server_kind_gets_no_guess():
    with _server("someone") as url:
        note = OpenAIAdapter(url, "m").scoring_note
    assert note.startswith("not offered: HTTP 400") and "vLLM" not in note and "sglang" not in note
