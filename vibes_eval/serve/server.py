"""`vibes-eval serve CKPT`: a minimal OpenAI-compatible server over a local checkpoint.

Just enough of the API for `vibes-eval run --adapter openai` (and its tests) to talk to a
checkpoint as it would to vLLM: `GET /v1/models` and `POST /v1/chat/completions` with one
user message holding one image (a data: URI) and one text part, greedy decoding; and vLLM's
`prompt_logprobs` extension (the log-probability of every prompt token, optionally after an
assistant answer: adapters/openai/prompt_logprobs.py), so the likelihood probes run over HTTP too. Answers
come from the Adapter's own `generate`, so a served checkpoint answers exactly as it does
in-process. Built on the stdlib's ThreadingHTTPServer: no new dependency, no streaming,
no authentication unless `api_key` is given; it binds to 127.0.0.1 unless told otherwise
(`--host ::1` and other IPv6 addresses work too).

Bounded against its clients: images are refused from their header above limits.MAX_PIXELS,
questions above MAX_QUESTION_CHARS; at most MAX_CONCURRENT_SERVE requests are decoded and
answered at once (a few more wait, the rest get 503), connections are capped, and a body that
does not arrive in full within `body_timeout` seconds (a Content-Length larger than what is
sent) is answered 408 and its thread freed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import vibes_eval.interrupt as interrupt
from vibes_eval.errors import EXIT_OK, ImageTooLarge, command
from vibes_eval.limits import MAX_CONCURRENT_SERVE, MAX_PIXELS, MAX_QUESTION_CHARS, open_image
from vibes_eval.records import Request
from vibes_eval.resources import TOY_MARKER
from vibes_eval.safety import short, strip_control
from vibes_eval.serve.connections import MAX_CONNECTIONS, BoundedServer, HeaderDeadline

__all__ = ["BODY_TIMEOUT", "MAX_BODY", "MAX_CONNECTIONS", "MAX_TOKENS", "add_serve_parser", "serve", "serve_command"]

MAX_BODY = 32 << 20  # bytes: a base64 PNG of a large photo fits many times over
MAX_TOKENS = 4096
BODY_TIMEOUT = 30.0  # seconds for a request's headers and body to arrive in full
MAX_WAITING = 8  # requests queued for the model beyond the ones being answered; more get 503
_DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,(?P<data>.*)", re.DOTALL)


def suite_for(ckpt) -> str | None:
    """The bundled suite a client should ask this checkpoint: `shapes` for a toy; None (the client's default) otherwise."""
    return "shapes" if ckpt and (Path(ckpt) / TOY_MARKER).is_file() else None


class _BadRequest(Exception):
    """The request cannot be served: an HTTP status and a message for the client."""

    def __init__(self, status: int, message: str, code: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.code = status, code


class _App:
    """What every handler thread shares: the adapter, its lock, the served model name."""

    def __init__(self, adapter, model_name: str, api_key: str | None, log, *, workers: int = MAX_CONCURRENT_SERVE,
                 waiting: int = MAX_WAITING, body_timeout: float = BODY_TIMEOUT, prompt_logprobs: bool = True):
        self.adapter, self.model_name, self.api_key, self.log = adapter, model_name, api_key, log
        self.offers_logprobs = prompt_logprobs
        self.lock = threading.Lock()  # the HF model is not thread-safe: one generate at a time
        self.work = threading.BoundedSemaphore(workers)  # decoding images and answering: bounded memory
        self.admitted = threading.BoundedSemaphore(workers + waiting)  # in work or waiting for it
        self.body_timeout = body_timeout
        self.created = int(time.time())

    def model_entry(self) -> dict:
        a = self.adapter
        return {
            "id": self.model_name,
            "object": "model",
            "created": self.created,
            "owned_by": "vibes-eval",
            "root": str(a.checkpoint) if a.checkpoint else None,
            "template": a.template_name or "checkpoint chat template",
            "loader": a.loader,
            "suite": suite_for(a.checkpoint),  # ours: `run --adapter openai` picks it when given no --suite
        }

    def complete(self, body: dict) -> dict:
        """A chat.completion for one validated request body; _BadRequest for anything we do not serve."""
        if not isinstance(body, dict):
            raise _BadRequest(400, "the body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str):
            raise _BadRequest(400, "`model` is required (a string)")
        if model != self.model_name:
            raise _BadRequest(404, f"model {model!r} not found; this server serves {self.model_name!r}", "model_not_found")
        if body.get("stream"):
            raise _BadRequest(400, "streaming is not supported")
        if body.get("n") not in (None, 1):
            raise _BadRequest(400, "`n` must be 1")
        temperature = body.get("temperature")
        if temperature is not None and (not isinstance(temperature, (int, float)) or temperature != 0):
            raise _BadRequest(400, "this server decodes greedily: `temperature` must be 0 (or absent)")
        limit = next((body[k] for k in ("max_tokens", "max_completion_tokens") if body.get(k) is not None), 64)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_TOKENS:
            raise _BadRequest(400, f"`max_tokens` must be an integer from 1 to {MAX_TOKENS}")
        if not self.admitted.acquire(blocking=False):
            raise _BadRequest(503, "the server is busy: too many requests at once; retry later", "server_busy")
        try:
            with self.work:
                return self._answer(body, limit)
        finally:
            self.admitted.release()

    def _answer(self, body: dict, limit: int) -> dict:
        if body.get("prompt_logprobs") is not None:
            return self.prompt_logprobs(body)
        image, question = _one_image_and_text(body.get("messages"))
        with tempfile.TemporaryDirectory(prefix="vibes-serve-") as tmp:
            # the Adapter's generate takes image files: reuse its exact path rather than a second one
            path = Path(tmp) / "image.png"
            image.save(path, format="PNG")
            req = Request(prompt_id="serve", image=path, question=question, max_new_tokens=limit)
            with self.lock:
                resp = self.adapter.generate([req])[0]
        if resp.finish == "error":
            kind = resp.error_kind.value if resp.error_kind else "server_error"  # the client reads the kind back
            raise _BadRequest(500, resp.error or "generation failed", kind)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": resp.text},
                "finish_reason": "length" if resp.finish == "length" else "stop",
            }],
            # prompt tokens are not counted: that would take a second pass through the processor
            "usage": {"completion_tokens": resp.new_tokens, "total_tokens": resp.new_tokens},
        }

    def prompt_logprobs(self, body: dict) -> dict:
        """vLLM's prompt_logprobs extension (adapters/openai/prompt_logprobs.py): every prompt token's log-probability."""
        from vibes_eval.adapters.openai.prompt_logprobs import answer_request

        if not self.offers_logprobs:
            raise _BadRequest(400, "`prompt_logprobs` is not supported by this server")
        try:
            out = answer_request(self.adapter, body, _one_image_and_text, self.lock)
        except ValueError as e:
            raise _BadRequest(400, str(e)) from None
        return {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name, **out}


def _one_image_and_text(messages):
    """(PIL image, question) from `[{"role": "user", "content": [image_url part, text part]}]`."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(messages, list) or len(messages) != 1 or not isinstance(messages[0], dict):
        raise _BadRequest(400, "`messages` must hold exactly one user message")
    msg = messages[0]
    if msg.get("role") != "user" or not isinstance(msg.get("content"), list):
        raise _BadRequest(400, "the message must have role 'user' and a list of content parts")
    parts = msg["content"]
    images = [p for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    texts = [p for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    if len(images) != 1 or len(texts) != 1 or len(parts) != 2:
        raise _BadRequest(400, "the message content must be one image_url part and one text part")
    url = images[0].get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    text = texts[0].get("text")
    if not isinstance(text, str):
        raise _BadRequest(400, "the text part needs a `text` string")
    if len(text) > MAX_QUESTION_CHARS:
        raise _BadRequest(400, f"the question is {len(text):,} characters; at most {MAX_QUESTION_CHARS:,} are served")
    m = _DATA_URI.fullmatch(url) if isinstance(url, str) else None
    if m is None:  # no fetching of http URLs: the server reaches nothing beyond its client
        raise _BadRequest(400, "image_url.url must be a data:image/...;base64, URI")
    try:
        raw = base64.b64decode(m.group("data"), validate=True)
        image = open_image(raw, MAX_PIXELS)  # the size is checked from the header, before decoding
    except ImageTooLarge as e:
        raise _BadRequest(400, f"image_url: {e}") from None
    except (binascii.Error, ValueError, OSError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise _BadRequest(400, f"image_url: not a decodable image: {type(e).__name__}") from None
    return image, text


class _Handler(HeaderDeadline, BaseHTTPRequestHandler):
    server_version = "vibes-eval-serve"

    @property
    def app(self) -> _App:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        if self.app.log:
            self.app.log(strip_control(f"{self.address_string()} {format % args}", newlines=False))

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        self._send(status, {"error": {"message": message, "type": kind, "code": code}})

    def _authorized(self) -> bool:
        if self.app.api_key and self.headers.get("Authorization") != f"Bearer {self.app.api_key}":
            self._error(401, "missing or wrong API key", "invalid_api_key")
            return False
        return True

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if not self._authorized():
            return
        entry = self.app.model_entry()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            self._send(200, {"object": "list", "data": [entry]})
        elif path.startswith("/v1/models/"):
            name = path[len("/v1/models/"):]
            if name == entry["id"]:
                self._send(200, entry)
            else:
                self._error(404, f"model {name!r} not found; this server serves {entry['id']!r}", "model_not_found")
        else:
            self._error(404, f"no such endpoint: GET {path or '/'}", "not_found")

    def do_POST(self):  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0].rstrip("/")
        if path != "/v1/chat/completions":
            self._error(404, f"no such endpoint: POST {path or '/'}", "not_found")
            return
        if not self._authorized():
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._error(411, "Content-Length is required")
            return
        if not 0 < length <= MAX_BODY:
            self._error(413 if length > MAX_BODY else 400, f"the body must be 1 to {MAX_BODY} bytes")
            return
        raw = self._read_body(length)
        if raw is None:
            return
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._error(400, "the body is not valid JSON")
            return
        try:
            self._send(200, self.app.complete(body))
        except _BadRequest as e:
            self._error(e.status, str(e), e.code)
        except Exception as e:  # noqa: BLE001 - the client gets the crash's words, the server keeps serving
            self._error(500, f"{type(e).__name__}: {short(str(e).splitlines()[0] if str(e) else '', 300)}", "server_error")

    def _read_body(self, length: int) -> bytes | None:
        """The body, read within the app's body_timeout in all (not per read); None once answered 408."""
        deadline = time.monotonic() + self.app.body_timeout
        chunks, got = [], 0
        try:
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(length - got, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            pass
        if got < length:
            self.close_connection = True
            try:
                self._error(408, f"the body ended after {got} of its {length} bytes (Content-Length)", "request_timeout")
            except OSError:  # the client is gone
                pass
            return None
        return b"".join(chunks)


def serve(adapter, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None,
          api_key: str | None = None, log=None, body_timeout: float = BODY_TIMEOUT,
          workers: int = MAX_CONCURRENT_SERVE, prompt_logprobs: bool | None = None) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serve `adapter` on http://host:port/v1 from a background thread.

    Args:
        adapter: a loaded Adapter (its `generate` answers every request, one at a time).
        host: the interface to bind; keep 127.0.0.1 unless the network is trusted (no authentication by default).
        port: 0 picks a free port (read it back from `server.server_address[1]`).
        model_name: the name clients must send as `model`; default the checkpoint folder's name.
        api_key: if set, requests must carry `Authorization: Bearer <api_key>`.
        log: optional callable taking one line per request.
        body_timeout: seconds a request's body may take to arrive in full (else 408).
        workers: requests decoded and answered at once.
        prompt_logprobs: offer vLLM's `prompt_logprobs` extension (default: when the adapter has a
            transformers model and processor, as HFAdapter does); False answers such requests with 400.

    Returns:
        (server, thread): stop with `server.shutdown(); server.server_close()`.
    """
    name = model_name or adapter.name
    server = BoundedServer((host, port), _Handler)
    server.header_timeout, server.log = body_timeout, log
    if prompt_logprobs is None:
        prompt_logprobs = adapter.supports_prompt_logprobs
    server.app = _App(adapter, name, api_key, log, workers=workers, body_timeout=body_timeout,  # type: ignore[attr-defined]
                      prompt_logprobs=prompt_logprobs)
    thread = threading.Thread(target=server.serve_forever, name=f"vibes-serve-{name}", daemon=True)
    thread.start()
    return server, thread


def add_serve_parser(subparsers):
    """Define `vibes-eval serve CKPT [--host 127.0.0.1] [--port 8000] ...`; returns the sub-parser."""
    p = subparsers.add_parser(
        "serve",
        help="serve a checkpoint as an OpenAI-compatible chat-completions server (for --adapter openai)",
        description="A minimal OpenAI-compatible server (GET /v1/models, POST /v1/chat/completions) over a local checkpoint.",
    )
    p.add_argument("checkpoint", metavar="CKPT", type=Path, help="checkpoint folder")
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1; there is no authentication without --api-key-env)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--model-name", help="the model name clients send (default: the checkpoint folder's name)")
    p.add_argument("--api-key-env", metavar="VAR", help="require the API key held in this environment variable")
    p.add_argument("--adapter", help="adapter profile name or YAML file (default: detected from config.json)")
    p.add_argument(
        "--base", type=Path, metavar="LLM_DIR", help="the LLM a stage-1 or LoRA output of the original LLaVA repo was trained from"
    )
    p.add_argument("--vision-tower", type=Path, metavar="DIR", help="a local CLIP vision tower for an original LLaVA repo checkpoint")
    p.add_argument("--template", help="conversation template to answer with (overrides the checkpoint's)")
    p.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when present)")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: bfloat16 on GPU, float32 on CPU")
    return p


@command
def serve_command(args) -> int:
    """Load the checkpoint (any loader, through open_adapter), serve it until Ctrl-C.

    Bad usage: one line, exit 2; a checkpoint that cannot load: one line, exit 3.
    """
    import os

    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.adapters.opening import open_adapter
    from vibes_eval.errors import UsageError

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a port number")
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise UsageError(f"--api-key-env: ${args.api_key_env} is not set")
    # one request at a time: nothing to share, and no prefix cache to grow
    spec = AdapterSpec(checkpoint=args.checkpoint, adapter=args.adapter, device=args.device, dtype=args.dtype,
                       template=args.template, batch_size=1, prefix_cache=False,
                       base=args.base, vision_tower=args.vision_tower)
    adapter = open_adapter(spec)
    try:
        server, thread = serve(adapter, args.host, args.port, model_name=args.model_name, api_key=api_key,
                               log=lambda line: print(line, file=sys.stderr))
    except OSError as e:  # port in use, or an address this machine does not have
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    host, port = server.server_address[:2]
    host = f"[{host}]" if ":" in host else host
    name = server.app.model_name  # type: ignore[attr-defined]
    if args.host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"vibes-eval: warning: listening on {args.host} without an API key; anyone who can reach it can use it", file=sys.stderr)
    print(strip_control(f"serving {args.checkpoint} as model {name!r} at http://{host}:{port}/v1 (Ctrl-C to stop)"), file=sys.stderr)
    try:  # until Ctrl-C (exit 130) or SIGTERM (143), said by cli.main; a request in flight is not waited for
        while thread.is_alive():
            interrupt.wait(0.5)
    finally:
        server.shutdown()
        server.server_close()
    return EXIT_OK
