"""The OpenAI-compatible loader and `vibes-eval serve`: every byte of traffic stays on 127.0.0.1.

The toy served over HTTP must answer exactly as it does in-process; with the server's prompt
log-probabilities the likelihood probes run over HTTP and match the in-process ones, without
them they are skipped and the counterfactual alone still catches a disconnected projector.
HTTP failures become error Responses that name the status and the URL.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from helpers import REPO, SHAPES, LocalDouble
from httpstub import NO_PROMPT_LOGPROBS, is_capability_probe, running, until_done

from vibes_eval.adapters.openai.model import OpenAIAdapter, api_root
from vibes_eval.errors import CheckpointError
from vibes_eval.records import Request, Response, Status
from vibes_eval.serve.server import add_serve_parser, serve, serve_command

IMAGE = REPO / "suites" / "images" / "shapes" / "describe-two.png"
LIKELIHOOD_PROBES = ("image_gain", "cross_match", "likelihood", "template_fit")


@contextmanager
def served(adapter, **kwargs):
    """`adapter` behind `vibes_eval.serve.server` on 127.0.0.1:<free port>; yields the base URL."""
    with until_done(*serve(adapter, "127.0.0.1", 0, **kwargs)) as url:
        yield url


class _Hits(list):
    active = peak = 0


@contextmanager
def stub(script: list[tuple[int, dict]], delay: float = 0.0):
    """A scripted server: POSTs get the script's answers in order (the last one repeats).

    Yields (url, hits): the arrival time of each POST; `hits.peak` is the most POSTs in flight at once.
    """
    hits = _Hits()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status, payload):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout test)
                pass

        def do_GET(self):  # noqa: N802
            self._send(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})

        def do_POST(self):  # noqa: N802
            if is_capability_probe(self.rfile.read(int(self.headers["Content-Length"]))):
                return self._send(400, NO_PROMPT_LOGPROBS)  # no prompt log-probabilities: not a scripted answer
            with lock:
                hits.append(time.monotonic())
                n = len(hits)
                hits.active += 1
                hits.peak = max(hits.peak, hits.active)
            time.sleep(delay)
            with lock:
                hits.active -= 1
            self._send(*script[min(n, len(script)) - 1])

    with running(Handler) as url:
        yield url, hits


def completion(text: str, finish: str = "stop", tokens: int | None = 2) -> dict:
    out = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
    }
    if tokens is not None:
        out["usage"] = {"completion_tokens": tokens}
    return out


def ask(question: str = "Describe the image.", variant: str = "real", max_new_tokens: int = 8) -> Request:
    return Request(prompt_id="p1", variant=variant, image=IMAGE, question=question, max_new_tokens=max_new_tokens)


class EchoAdapter(LocalDouble):
    """A fake local model: says what image file it was given, so the server's plumbing can be checked."""

    def __init__(self):
        super().__init__()
        self.seen: list[Request] = []

    def generate(self, requests):
        from PIL import Image

        out = []
        for r in requests:
            self.seen.append(r)
            with Image.open(r.image) as im:
                w, h = im.size
                px = im.convert("RGB").getpixel((0, 0))
            finish = "length" if r.max_new_tokens <= 3 else "eos"
            out.append(Response(prompt_id=r.prompt_id, text=f"{r.question} {w}x{h} {px}", new_tokens=3, finish=finish))
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the client and server on their own (no model) ---------------------------------------------------


@pytest.mark.parametrize(
    "given, root",
    [("http://127.0.0.1:8000", "http://127.0.0.1:8000"), ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
     ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"), ("https://h.example/api/v1/", "https://h.example/api")],
)
def test_base_url_with_or_without_v1(given, root):
    assert api_root(given) == root


@pytest.mark.parametrize("bad", ["127.0.0.1:8000", "", "ftp://h/v1", "http://"])
def test_base_url_must_be_http(bad):
    with pytest.raises(ValueError, match="--base-url"):
        api_root(bad)


def test_round_trip_through_serve_keeps_pixels_blank_variant_and_finish():
    from PIL import Image

    with Image.open(IMAGE) as im:
        corner = im.convert("RGB").getpixel((0, 0))
    echo = EchoAdapter()
    with served(echo) as url:
        for base in (url, url + "/v1/"):
            adapter = OpenAIAdapter(base, "echo")
            real, blank, short = adapter.generate([ask(), ask(variant="blank"), ask("Hi?", max_new_tokens=2)])
            assert real.finish == "eos" and real.new_tokens == 3 and real.error is None
            assert real.text == f"Describe the image. 64x64 {corner}"  # PNG both ways: the same pixels
            assert blank.text.endswith("64x64 (122, 116, 104)") and blank.variant == "blank"  # CLIP-mean grey
            assert short.finish == "length"
    assert sorted(r.max_new_tokens for r in echo.seen[:3]) == [2, 8, 8]  # sent concurrently: any order
    assert all(r.variant == "real" and r.template is None for r in echo.seen)  # the server sees plain images


def test_fingerprint_names_the_server_and_the_model():
    with served(EchoAdapter()) as url:
        fp = OpenAIAdapter(url + "/v1", "echo").describe([IMAGE])
        missing = OpenAIAdapter(url, "nope").describe()
    assert fp["architecture"] == "remote" and fp["loader"] == "openai" and fp["device"] == "remote"
    assert fp["base_url"] == url + "/v1" and fp["model"] == "echo" and fp["template"] == "server chat template"
    assert fp["server"]["id"] == "echo" and fp["server"]["root"] == "/models/echo" and "created" not in fp["server"]
    assert "python" in fp["versions"] and "server_note" not in fp
    assert missing["server"] is None and "'nope' is not among the server's models (echo)" in missing["server_note"]


def test_a_served_toy_names_its_suite_and_nothing_else_does(tmp_path):
    from vibes_eval.adapters.openai.model import suggested_suite
    from vibes_eval.resources import TOY_MARKER

    toy = EchoAdapter()
    toy.checkpoint = tmp_path
    (tmp_path / TOY_MARKER).write_text("{}")
    with served(toy, model_name="echo") as url:
        assert suggested_suite(url, "echo") == "shapes"
        assert suggested_suite(url, "other") is None  # not its model
    with served(EchoAdapter()) as url:  # not a toy: the client keeps its default suite
        assert suggested_suite(url + "/v1", "echo") is None
    assert suggested_suite(f"http://127.0.0.1:{free_port()}", "echo") is None  # unreachable: the run says so itself


def test_scoring_is_not_offered():
    with served(EchoAdapter()) as url:  # no transformers model behind it: serve refuses prompt_logprobs
        adapter = OpenAIAdapter(url, "echo")
        assert adapter.supports_scoring is False and adapter.template_name is None
        assert adapter.supports_templates is False  # known once open: the template sweep rides on scoring
    with pytest.raises(NotImplementedError):
        adapter.score([ask()], ["a red circle"])


def test_a_template_request_is_an_error_not_a_silent_default():
    with served(EchoAdapter()) as url:
        r = Request(prompt_id="p1", image=IMAGE, question="Q?", template="llava_v0")
        (resp,) = OpenAIAdapter(url, "echo").generate([r])
    assert resp.finish == "error" and "server applies its own chat template" in resp.error


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        ({"model": "echo"}, 400, "exactly one user message"),
        ({"model": "nope", "messages": []}, 404, "model 'nope' not found"),
        ({"model": "echo", "messages": [{"role": "user", "content": "Describe the image."}]}, 400, "content parts"),
        ({"model": "echo", "messages": [{"role": "user", "content": [{"type": "text", "text": "Q?"}]}]}, 400, "one image_url part"),
        ({"model": "echo", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/cat.png"}}, {"type": "text", "text": "Q?"}]}]},
         400, "data:image"),
        ({"model": "echo", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}, {"type": "text", "text": "Q?"}]}]},
         400, "not a decodable image"),
        ({"model": "echo", "temperature": 0.7, "messages": []}, 400, "temperature"),
        ({"model": "echo", "max_tokens": 0, "messages": []}, 400, "max_tokens"),
        ({"model": "echo", "stream": True, "messages": []}, 400, "streaming"),
    ],
)
def test_server_rejects_what_it_cannot_serve(body, status, words):
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    with served(EchoAdapter()) as url:
        req = urllib.request.Request(url + "/v1/chat/completions", data=data, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        with info.value as e:
            payload = json.loads(e.read())
    assert info.value.code == status
    assert words in payload["error"]["message"]


def test_server_crash_is_a_500_with_the_crash_in_words():
    class Crashing(EchoAdapter):
        def generate(self, requests):
            return [Response(prompt_id=r.prompt_id, finish="error", error="ValueError: Image features and image tokens do not match")
                    for r in requests]

    with served(Crashing()) as url:
        (resp,) = OpenAIAdapter(url, "echo", tries=1).generate([ask()])
    assert resp.finish == "error" and resp.text == ""
    assert resp.error == f"HTTP 500 from {url}/v1/chat/completions: ValueError: Image features and image tokens do not match"


def test_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("VIBES_EVAL_API_KEY", raising=False)
    with served(EchoAdapter(), api_key="sekrit") as url:
        with pytest.raises(CheckpointError, match="HTTP 401 from .*/v1/models: missing or wrong API key .set VIBES_EVAL_API_KEY"):
            OpenAIAdapter(url, "echo")
        monkeypatch.setenv("OPENAI_API_KEY", "sekrit")
        assert OpenAIAdapter(url, "echo").generate([ask()])[0].finish == "eos"
        monkeypatch.setenv("VIBES_EVAL_API_KEY", "wrong")  # the first variable wins
        with pytest.raises(CheckpointError, match="HTTP 401"):
            OpenAIAdapter(url, "echo")


def test_nothing_listening_is_a_checkpoint_error_in_one_line():
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(CheckpointError) as info:
        OpenAIAdapter(f"http://127.0.0.1:{port}/v1", "m")
    message = str(info.value)
    assert message.startswith(f"cannot connect to http://127.0.0.1:{port}/v1/models: ") and "\n" not in message
    assert time.monotonic() - t0 < 5  # checked once, no retries


def test_503_is_retried_then_answered():
    script = [(503, {"error": {"message": "overloaded"}}), (503, {"error": {"message": "overloaded"}}), (200, completion("a red circle"))]
    with stub(script) as (url, hits):
        (resp,) = OpenAIAdapter(url, "m", backoff=0.05).generate([ask()])
    assert resp.text == "a red circle" and resp.finish == "eos" and resp.new_tokens == 2
    assert len(hits) == 3
    assert hits[1] - hits[0] >= 0.05 and hits[2] - hits[1] >= 0.1  # exponential backoff: 0.05 s, then 0.1 s


@pytest.mark.parametrize(
    "status, tries, expected",
    [(503, 3, "HTTP 503 from {url}/v1/chat/completions: overloaded (after 3 tries)"),
     (429, 2, "HTTP 429 from {url}/v1/chat/completions: overloaded (after 2 tries)"),
     (404, 3, "HTTP 404 from {url}/v1/chat/completions: overloaded")],  # a client error is not retried
)
def test_retries_are_bounded(status, tries, expected):
    with stub([(status, {"error": {"message": "overloaded"}})]) as (url, hits):
        (resp,) = OpenAIAdapter(url, "m", tries=tries, backoff=0.01).generate([ask()])
    assert resp.finish == "error" and resp.text == ""
    assert resp.error == expected.format(url=url)
    assert len(hits) == (tries if status != 404 else 1)


def test_timeout_is_per_request_and_retried():
    with stub([(200, completion("late"))], delay=0.6) as (url, hits):
        t0 = time.monotonic()
        (resp,) = OpenAIAdapter(url, "m", timeout=0.2, tries=2, backoff=0.01).generate([ask()])
        elapsed = time.monotonic() - t0
    assert resp.finish == "error" and resp.error == f"cannot connect to {url}/v1/chat/completions: timed out after 0.2 s (after 2 tries)"
    assert len(hits) == 2 and elapsed < 2


def test_finish_reason_and_usage_are_read():
    with stub([(200, completion("a red", finish="length", tokens=None))]) as (url, _):
        (resp,) = OpenAIAdapter(url, "m").generate([ask()])
    assert resp.finish == "length" and resp.new_tokens == 0 and resp.text == "a red"


def test_concurrency_is_bounded():
    with stub([(200, completion("ok"))], delay=0.15) as (url, hits):
        adapter = OpenAIAdapter(url, "m", concurrency=2)
        t0 = time.monotonic()
        out = adapter.generate([ask(f"Q{i}?") for i in range(4)])
        elapsed = time.monotonic() - t0
    assert [r.text for r in out] == ["ok"] * 4 and len(hits) == 4
    assert hits.peak == 2 and elapsed >= 0.3  # two at a time: two rounds of 0.15 s


def _serve_args(*argv: str):
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_serve_parser_defaults_to_loopback():
    args = _serve_args("ckpt")
    assert (args.checkpoint, args.host, args.port, args.model_name) == (Path("ckpt"), "127.0.0.1", 8000, None)


@pytest.mark.parametrize(
    "argv, code, words",
    [(("{missing}",), 3, "checkpoint directory not found"),
     (("{missing}", "--template", "nope"), 2, "--template: unknown template 'nope'"),
     (("{missing}", "--port", "70000"), 2, "--port: 70000"),
     (("{missing}", "--api-key-env", "VIBES_EVAL_TEST_UNSET_KEY"), 2, "$VIBES_EVAL_TEST_UNSET_KEY is not set")],
)
def test_serve_command_fails_in_one_line(argv, code, words, tmp_path, capsys):
    args = _serve_args(*(a.format(missing=tmp_path / "missing") for a in argv))
    assert serve_command(args) == code
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


# --- the toy zoo served over HTTP -----------------------------------------------------------------


def _hf(ckpt: Path):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter

    return HFAdapter(ckpt, detect(ckpt))


class Recording(OpenAIAdapter):
    """The client, keeping every Request the runner gave it and the Response it made."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[tuple[Request, Response]] = []

    def generate(self, requests):
        out = super().generate(requests)
        self.log += zip(requests, out)
        return out


def _run_served(ckpt: Path, prompt_logprobs: bool = True):
    """(scorecard over HTTP, [(answer over HTTP, in-process answer to the same Request)])."""
    from vibes_eval.api import evaluate
    from vibes_eval.suite.schema import load_suite

    hf = _hf(ckpt)
    with served(hf, prompt_logprobs=prompt_logprobs) as url:
        client = Recording(url, ckpt.name)
        sc = evaluate(client, load_suite(SHAPES), label=url)
    direct = hf.generate([req for req, _ in client.log])
    return sc, [(resp, d) for (_, resp), d in zip(client.log, direct)]


@pytest.fixture(scope="module")
def healthy_run(zoo_dir):
    return _run_served(zoo_dir / "healthy")


def test_served_answers_equal_the_in_process_ones(healthy_run):
    sc, pairs = healthy_run
    assert len(pairs) == 10 + 2 * 8  # real answers, then blank and swap for the 8 non-refusal prompts
    assert {r.variant for r, _ in pairs} == {"real", "blank", "swap"}
    for served_resp, direct in pairs:
        assert direct.finish != "error"
        assert (served_resp.prompt_id, served_resp.variant, served_resp.text, served_resp.finish, served_resp.new_tokens) == (
            direct.prompt_id, direct.variant, direct.text, direct.finish, direct.new_tokens)
    assert all(p.error is None for p in sc.prompts)


def test_healthy_passes_with_the_likelihood_probes_over_http(healthy_run, zoo_dir):
    from vibes_eval.api import evaluate
    from vibes_eval.suite.schema import load_suite

    sc, _ = healthy_run
    sig = {s.probe: s for s in sc.signals}
    for name in ("image_gain", "cross_match", "likelihood", "counterfactual", "template_fit"):
        assert sig[name].status == Status.PASS, (name, sig[name].reason)
    # the other templates reach the server as vLLM's `chat_template` request field
    assert sig["template_fit"].evidence["best"] == "llava-1.5-hf" and len(sig["template_fit"].evidence["loglik"]) > 3
    assert sc.verdict.exit_code == 0 and sc.verdict.diagnoses == [], sc.verdict.summary
    assert sc.fingerprint["loader"] == "openai" and sc.fingerprint["server"]["id"] == "healthy"
    assert sc.fingerprint["prompt_logprobs"].startswith("offered")
    local = {s.probe: s for s in evaluate(_hf(zoo_dir / "healthy"), load_suite(SHAPES), label="local").signals}
    for name in ("image_gain", "cross_match", "likelihood"):  # the same numbers as in-process
        assert sig[name].score == pytest.approx(local[name].score, abs=1e-3), name
    gain = "gain_nats_per_token"
    assert sig["image_gain"].evidence[gain] == pytest.approx(local["image_gain"].evidence[gain], abs=2e-3)


def test_a_disconnected_projector_is_image_blind_by_the_counterfactual_alone(zoo_dir):
    # a server without prompt log-probabilities, and no projector statistics over HTTP either:
    # the counterfactual is the only witness
    sc, pairs = _run_served(zoo_dir / "zero-projector", prompt_logprobs=False)
    assert all(s.text == d.text for s, d in pairs)
    sig = {s.probe: s for s in sc.signals}
    assert all(sig[name].status == Status.SKIP for name in LIKELIHOOD_PROBES)
    assert sig["counterfactual"].status == Status.FAIL
    assert sc.verdict.diagnoses == ["image_blind"] and sc.verdict.exit_code == 1, sc.verdict.summary


@pytest.fixture(scope="module")
def blind_run(zoo_dir):
    return _run_served(zoo_dir / "image-blind")


def test_image_blind_answers_over_http_equal_the_in_process_ones(blind_run):
    _, pairs = blind_run
    assert all((s.text, s.finish) == (d.text, d.finish) for s, d in pairs)


def test_image_blind_is_diagnosed_over_http_by_the_likelihood_probes(blind_run):
    # its answers still change with the image (counterfactual similarity 0.63 < 0.8, in-process too):
    # only image_gain catches it, and over HTTP it needs the server's prompt log-probabilities
    sc, _ = blind_run
    sig = {s.probe: s for s in sc.signals}
    assert sig["image_gain"].status == Status.FAIL, sig["image_gain"].reason
    assert sig["cross_match"].status in (Status.PASS, Status.FAIL) and sig["cross_match"].score is not None
    assert "image_blind" in sc.verdict.diagnoses and sc.verdict.exit_code == 1, sc.verdict.summary


def test_unknown_model_is_an_error_response_naming_the_status(zoo_dir):
    hf = _hf(zoo_dir / "healthy")
    with served(hf) as url:
        out = OpenAIAdapter(url, "x").generate([ask(), ask(variant="blank")])
    assert [r.finish for r in out] == ["error", "error"]
    assert out[0].error == f"HTTP 404 from {url}/v1/chat/completions: model 'x' not found; this server serves 'healthy'"


# --- `vibes-eval run --adapter openai` (once cli/main.py and cli/run.py are wired) ---------------------------


def _cli_wired() -> bool:
    from vibes_eval.cli.main import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return "serve" in sub.choices and "--base-url" in sub.choices["run"]._option_string_actions


wired = pytest.mark.skipif(not _cli_wired(), reason="cli/main.py has no `serve` command or `run --base-url` yet")


@wired
def test_cli_run_against_a_served_toy(zoo_dir, tmp_path, capsys):
    from vibes_eval.cli.main import main

    hf = _hf(zoo_dir / "healthy")
    with served(hf) as url:  # no --suite: the server says its model is a toy, so the shapes suite, as in-process
        code = main(["run", "--adapter", "openai", "--base-url", url + "/v1", "--model", "healthy",
                     "--out", str(tmp_path), "--concurrency", "2", "--timeout", "30", "--quiet"])
    sc = json.loads((tmp_path / "scorecard.json").read_text())
    assert code == 0, sc["verdict"]
    assert sc["suite"]["name"] == "shapes" and "the bundled 'shapes' suite" in capsys.readouterr().err
    assert sc["fingerprint"]["loader"] == "openai" and sc["fingerprint"]["profile"] == "openai"
    assert sc["fingerprint"]["request"]["concurrency"] == 2 and sc["checkpoint"] == f"healthy at {url}/v1"


@wired
@pytest.mark.parametrize(
    "argv, code, words",
    [(["--adapter", "openai", "--base-url", "http://127.0.0.1:{port}"], 2, "--model NAME"),
     (["{ckpt}", "--adapter", "openai", "--base-url", "http://127.0.0.1:{port}", "--model", "m"], 2, "takes no CKPT"),
     (["--base-url", "127.0.0.1:{port}", "--model", "m"], 2, "--base-url: expected an http"),
     (["--base-url", "http://127.0.0.1:{port}", "--model", "m", "--template", "plain"], 2, "--template: not available"),
     (["--base-url", "http://127.0.0.1:{port}", "--model", "m", "--suite", str(SHAPES)], 3, "cannot connect to http://127.0.0.1:{port}/v1/models")],
)
def test_cli_run_remote_errors(argv, code, words, tmp_path, capsys):
    from vibes_eval.cli.main import main

    port = free_port()  # nothing listens there
    fill = {"port": port, "ckpt": str(tmp_path)}
    assert main(["run", *(a.format(**fill) for a in argv), "--out", str(tmp_path / "out"), "--quiet"]) == code
    assert words.format(**fill) in capsys.readouterr().err


def test_wrong_template_is_diagnosed_over_http(zoo_dir):
    # the server renders each known template sent as `chat_template`: the one the toy was trained with wins
    sc, _ = _run_served(zoo_dir / "wrong-template")
    fit = {s.probe: s for s in sc.signals}["template_fit"]
    assert fit.status == Status.FAIL and fit.evidence["best"] == "llava-1.5-hf", fit.reason
    assert fit.evidence["margin_nats_per_token"] > 1.5
    assert "template_mismatch" in sc.verdict.diagnoses and sc.verdict.exit_code == 1
