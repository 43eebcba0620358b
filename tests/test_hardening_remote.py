"""Issue 13, the server adapter and `serve` under attack: every byte stays on 127.0.0.1 (or ::1).

Each test stands up a hostile fake server (or a hostile client) and checks that no secret
leaves, nothing waits unbounded, and a malformed answer costs one prompt, not the run.
Loops are bounded: a dripping or endless server stops on its own after a few seconds.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import zlib
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bounded import joined, until
from helpers import REPO, LocalDouble
from httpstub import NO_PROMPT_LOGPROBS, is_capability_probe

from vibes_eval.adapters.openai.model import OpenAIAdapter
from vibes_eval.errors import CheckpointError
from vibes_eval.limits import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from vibes_eval.records import Request, Response
from vibes_eval.serve.server import serve

IMAGE = REPO / "suites" / "images" / "shapes" / "describe-two.png"
KEY = "sk-test-S3CRETKEY-0123456789"
MODELS = {"object": "list", "data": [{"id": "m", "object": "model"}]}


def completion(content, finish="stop") -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"completion_tokens": 2}}


@contextmanager
def fake(handle):
    """A server on 127.0.0.1 whose every request goes to `handle(handler, method, body)`; yields (url, seen).

    `seen` lists (method, path, headers) of every request it received.
    """
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _do(self, method):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if method == "POST" and is_capability_probe(body):  # answered apart: not a request the test scripts
                return send(self, 400, NO_PROMPT_LOGPROBS)
            seen.append((method, self.path, dict(self.headers)))
            try:
                handle(self, method, body)
            except OSError:  # the client hung up (a timeout or a cancel under test)
                pass

        def do_GET(self):  # noqa: N802
            self._do("GET")

        def do_POST(self):  # noqa: N802
            self._do("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def send(h, status: int, payload, headers: dict | None = None) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    h.send_response(status)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def models_then(post):
    """A handler answering GET /v1/models with model `m`, and POSTs with `post(h, body)`."""
    def handle(h, method, body):
        if method == "GET":
            send(h, 200, MODELS)
        else:
            post(h, body)
    return handle


def ask(pid: str = "p1") -> Request:
    return Request(prompt_id=pid, image=IMAGE, question="What is shown?", max_new_tokens=8)


# --- secrets ----------------------------------------------------------------------------------------


def test_the_key_never_follows_a_redirect_to_another_origin():
    with fake(lambda h, m, b: send(h, 200, MODELS if m == "GET" else completion("stolen"))) as (other, other_seen):
        target = other + "/v1/chat/completions"
        with fake(models_then(lambda h, b: send(h, 302, b"", {"Location": target}))) as (url, _):
            a = OpenAIAdapter(url, "m", api_key=KEY, tries=1, timeout=5)
            [resp] = a.generate([ask()])
    assert resp.finish == "error" and "not followed" in resp.error
    assert not any(m == "POST" for m, _, _ in other_seen)
    assert not any(KEY in json.dumps(headers) for _, _, headers in other_seen)


def test_a_redirect_of_the_model_listing_is_not_followed_either():
    with fake(lambda h, m, b: send(h, 200, MODELS)) as (other, other_seen):
        with fake(lambda h, m, b: send(h, 301, b"", {"Location": other + "/v1/models"})) as (url, _):
            a = OpenAIAdapter(url, "m", api_key=KEY, tries=1, timeout=5)
    assert other_seen == [] and "301" in a.server_note


def test_a_key_echoed_by_the_server_is_redacted():
    echo = f"Incorrect API key provided: Bearer {KEY}. Headers: Authorization: Bearer {KEY}"
    with fake(lambda h, m, b: send(h, 401, {"error": {"message": echo}})) as (url, _):
        with pytest.raises(CheckpointError) as e:
            OpenAIAdapter(url, "m", api_key=KEY, tries=1)
    assert "HTTP 401" in str(e.value) and KEY not in str(e.value) and "S3CRET" not in str(e.value)
    with fake(models_then(lambda h, b: send(h, 500, {"detail": f"headers: {{'authorization': 'Bearer {KEY}'}}"}))) as (url, _):
        [resp] = OpenAIAdapter(url, "m", api_key=KEY, tries=1).generate([ask()])
    assert "HTTP 500" in resp.error and "S3CRET" not in resp.error
    with fake(models_then(lambda h, b: send(h, 200, completion(f"your key is {KEY}")))) as (url, _):
        [resp] = OpenAIAdapter(url, "m", api_key=KEY, tries=1).generate([ask()])
    assert resp.text == "your key is ***"


def test_url_userinfo_is_sent_as_basic_auth_and_never_shown():
    with fake(models_then(lambda h, b: send(h, 500, {"detail": f"auth was {h.headers.get('Authorization')}"}))) as (url, seen):
        a = OpenAIAdapter(url.replace("://", "://alice:pa55w0rd-xyz@"), "m", tries=1)
        [resp] = a.generate([ask()])
    assert seen[0][2]["Authorization"] == "Basic " + base64.b64encode(b"alice:pa55w0rd-xyz").decode()
    shown = json.dumps([a.describe(), resp.error, a.base_url])
    assert "pa55w0rd" not in shown and base64.b64encode(b"alice:pa55w0rd-xyz").decode() not in shown
    assert a.base_url == url + "/v1"


# --- bounded time and size --------------------------------------------------------------------------


def test_the_timeout_is_for_the_whole_request_not_each_read():
    sent = []

    def drip(h, body):  # a complete, valid answer, one byte every 0.1 s: each read well within the timeout
        data = json.dumps(completion("late " * 20)).encode()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        for i in range(len(data)):
            h.wfile.write(data[i:i + 1])
            h.wfile.flush()
            sent.append(i)
            time.sleep(0.1)

    with fake(models_then(drip)) as (url, _):
        a = OpenAIAdapter(url, "m", tries=1, timeout=0.6)
        [resp] = a.generate([ask()])
        total = len(json.dumps(completion("late " * 20)))
    assert resp.finish == "error" and "timed out after 0.6 s" in resp.error
    assert len(sent) < total // 4  # the client hung up long before the end (a per-read timeout would wait for all of it)


def test_a_server_that_lets_requests_time_out_is_given_up_on():
    release = threading.Event()

    def hang(h, body):
        release.wait(10)  # bounded

    with fake(models_then(hang)) as (url, seen):
        out = OpenAIAdapter(url, "m", tries=2, timeout=0.3, backoff=0.01, concurrency=2).generate([ask(f"p{i}") for i in range(12)])
        release.set()
    posts = sum(m == "POST" for m, _, _ in seen)
    assert [r.finish for r in out] == ["error"] * 12 and "not sent: the server" in out[-1].error
    assert posts <= 2 * (4 + 2)  # GIVE_UP_AFTER requests (plus those already in flight), 2 tries each; not 12 x 2


def test_an_endless_body_is_cut_at_the_cap_and_is_an_error_on_that_prompt():
    def endless(h, body):  # no Content-Length; stops by itself after 40 MiB
        h.send_response(200)
        h.end_headers()
        block = b" " * (1 << 20)
        for _ in range(40):
            h.wfile.write(block)

    with fake(models_then(endless)) as (url, _):
        [resp] = OpenAIAdapter(url, "m", tries=1, timeout=20).generate([ask()])
    assert resp.finish == "error" and "over 16 MiB" in resp.error


def test_a_huge_answer_is_cut_and_flagged():
    with fake(models_then(lambda h, b: send(h, 200, completion("word " * 2_000_000)))) as (url, _):
        [resp] = OpenAIAdapter(url, "m", tries=1, timeout=20).generate([ask()])
    assert len(resp.text) < MAX_ANSWER_CHARS + 100 and "cut by vibes-eval" in resp.text and resp.finish == "length"


@pytest.mark.parametrize("answer, words", [
    (completion(12345), "content is int 12345"),
    (completion("ok", ["stop"]), "finish_reason is list"),
    (completion({"text": "x"}), "content is dict"),
    ({"choices": "nope"}, "no choices[0].message"),
    ([1, 2, 3], "no choices[0].message"),
    (b"[" * 100000, "not JSON"),
])
def test_a_malformed_answer_is_an_error_on_that_prompt_only(answer, words):
    script = iter([answer, completion("a square")])
    with fake(models_then(lambda h, b: send(h, 200, next(script)))) as (url, _):
        out = OpenAIAdapter(url, "m", tries=1, concurrency=1).generate([ask("bad"), ask("good")])
    assert out[0].finish == "error" and words in out[0].error
    assert out[1] == Response(prompt_id="good", text="a square", new_tokens=2, finish="eos")


def test_cancel_cuts_requests_in_flight_and_starts_no_more():
    release = threading.Event()

    def hang(h, body):
        release.wait(20)  # bounded: the server gives up by itself
        send(h, 200, completion("late"))

    with fake(models_then(hang)) as (url, seen):
        a = OpenAIAdapter(url, "m", tries=3, timeout=30, concurrency=2)
        box = {}
        worker = threading.Thread(target=lambda: box.setdefault("out", a.generate([ask(f"p{i}") for i in range(6)])))
        worker.start()
        until(lambda: sum(m == "POST" for m, _, _ in seen) >= 2, 60, "two requests in flight")
        a.cancel()
        joined(worker, 10, "generate after cancel()")
        release.set()
    assert [r.finish for r in box["out"]] == ["error"] * 6
    assert sum(m == "POST" for m, _, _ in seen) == 2  # nothing started after the cancel, nothing retried


# --- serve, attacked by its clients -----------------------------------------------------------------


class Echo(LocalDouble):
    def __init__(self, hold: threading.Event | None = None):
        super().__init__()
        self.hold = hold

    def generate(self, requests):
        if self.hold is not None:
            self.hold.wait(20)
        return [Response(prompt_id=r.prompt_id, text="fine", new_tokens=1) for r in requests]


def bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    """A few hundred bytes whose header declares w x h pixels (decoding it would take w*h*3 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def chat(image: bytes, question: str = "What?") -> dict:
    uri = "data:image/png;base64," + base64.b64encode(image).decode()
    return {"model": "echo", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": uri}}, {"type": "text", "text": question}]}], "max_tokens": 4}


def post(url: str, payload: dict) -> tuple[int, dict]:
    import http.client
    import urllib.parse

    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps(payload), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@contextmanager
def served(adapter, host="127.0.0.1", **kw):
    server, thread = serve(adapter, host, 0, **kw)
    h = f"[{host}]" if ":" in host else host
    try:
        yield f"http://{h}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_serve_refuses_a_pixel_bomb_from_its_header():
    with served(Echo()) as url:
        status, body = post(url, chat(bomb_png()))
        ok_status, ok = post(url, chat(IMAGE.read_bytes()))
    assert status == 400 and "image too large: 400,000,000 pixels" in body["error"]["message"]
    assert ok_status == 200 and ok["choices"][0]["message"]["content"] == "fine"


def test_serve_refuses_a_huge_question():
    with served(Echo()) as url:
        status, body = post(url, chat(IMAGE.read_bytes(), "why " * (MAX_QUESTION_CHARS // 4 + 1)))
    assert status == 400 and "at most" in body["error"]["message"]


def test_serve_bounds_concurrent_work():
    hold = threading.Event()
    results = []
    with served(Echo(hold), workers=1) as url:
        threads = [threading.Thread(target=lambda: results.append(post(url, chat(IMAGE.read_bytes())))) for _ in range(12)]
        for t in threads:
            t.start()
        until(lambda: len(results) >= 3, 60, "3 of 12 requests told busy")  # 1 answering + 8 waiting admitted; 3 told at once
        busy = list(results)
        hold.set()
        for t in threads:
            joined(t, 15, "a client of serve")
    assert [s for s, _ in busy] == [503, 503, 503] and "busy" in busy[0][1]["error"]["message"]
    assert sorted(s for s, _ in results) == [200] * 9 + [503] * 3


def test_serve_times_out_a_body_shorter_than_its_content_length():
    with served(Echo(), body_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n{\"model\":")
            reply = b""
            while chunk := s.recv(4096):  # without the body deadline: socket.timeout after 10 s and the test fails
                reply += chunk
    assert reply.startswith(b"HTTP/1.0 408") and b"the body ended after 9 of its 100000 bytes" in reply


def _drip(port: int, pieces) -> int | None:
    """Send `pieces` 0.2 s apart; the index at which the server had dropped the connection, or None."""
    import select

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for i, piece in enumerate(pieces):
            try:
                s.sendall(piece)
                if select.select([s], [], [], 0.2)[0] and s.recv(4096) == b"":
                    return i
            except (BrokenPipeError, ConnectionResetError):
                return i
    return None


def test_serve_drops_a_client_that_drips_its_request_line_or_headers(capsys):
    with served(Echo(), body_timeout=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        # 8 s of header lines, each well within the per-read timeout; then a request line a byte at a time
        headers = _drip(port, [b"GET /v1/models HTTP/1.1\r\n"] + [f"X-Drip-{i}: x\r\n".encode() for i in range(40)])
        line = _drip(port, [bytes([c]) for c in b"POST /v1/chat/completions HTTP/1.0\r\n\r\n"])
    assert headers is not None and headers < 40 and line is not None  # dropped on the way, not served at the end
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err  # dropping a client is no error of ours


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_on_ipv6_loopback_and_the_client_reaches_it():
    with served(Echo(), host="::1") as url:
        a = OpenAIAdapter(url, "echo", tries=1)
        [resp] = a.generate([ask()])
    assert resp.text == "fine" and a.base_url.startswith("http://[::1]:")


# --- the whole command: nothing secret in any file or line it writes ---------------------------------


def test_cli_run_writes_no_secret_anywhere(tmp_path, monkeypatch, capsys):
    from vibes_eval.cli.main import main

    echo = f"Incorrect API key provided: Bearer {KEY}; you sent Authorization: Bearer {KEY}"
    monkeypatch.setenv("VIBES_EVAL_API_KEY", KEY)

    def handle(h, method, body):
        if method == "GET":
            send(h, 200, MODELS)
        elif b"circle" in body:  # some prompts: the key comes back in the answer, others in an error body
            send(h, 200, completion(f"{KEY} \x1b]0;title\x07"))
        else:
            send(h, 400, {"error": {"message": echo, "headers": {"authorization": f"Bearer {KEY}"}}})

    with fake(handle) as (url, seen):
        base = url.replace("://", "://carol:pw-SECRET-42@")
        code = main(["run", "--base-url", base, "--model", "m", "--suite", str(REPO / "suites" / "shapes.yaml"),
                     "--out", str(tmp_path / "out"), "--junit", str(tmp_path / "junit.xml"), "--timeout", "5"])
    out, err = capsys.readouterr()
    files = [tmp_path / "out" / "scorecard.json", tmp_path / "out" / "scorecard.html", tmp_path / "junit.xml"]
    assert code in (1, 3) and all(f.is_file() for f in files)
    for text in [out, err] + [f.read_text() for f in files]:
        assert "S3CRET" not in text and "pw-SECRET-42" not in text
    assert "\x1b]0;" not in out
    assert json.loads(files[0].read_text())["checkpoint"] == f"m at {url}"
    assert all(h.get("Authorization") == f"Bearer {KEY}" for _, _, h in seen)  # sent only to the server named
