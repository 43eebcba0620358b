"""The OpenAI-compatible loader: a checkpoint behind a chat-completions server (vLLM, SGLang, TGI, `vibes-eval serve`).

`OpenAIAdapter(base_url, model)` talks to `POST {base_url}/v1/chat/completions` with the
stdlib (http.client), one request per prompt, a few at a time. Likelihoods come from the
server's prompt log-probabilities where it offers them (vLLM's `prompt_logprobs` extension,
and `vibes-eval serve`; see `prompt_logprobs.py`): one probe request decides, and without them
`supports_scoring` is False and the runner skips those probes (the counterfactual answers
still run). The API key comes from `$VIBES_EVAL_API_KEY`, else `$OPENAI_API_KEY`.

Hardened against the server: redirects are not followed (the key never reaches another
address), each request has a total deadline and a body cap, a malformed answer is an error on
its prompt only, and the key and URL passwords are redacted from everything recorded.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import platform
import socket
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.adapters.openai.chat_answer import KINDS as _KINDS
from vibes_eval.adapters.openai.chat_answer import parse_answer as _parse_answer
from vibes_eval.adapters.openai.chat_answer import server_code as _server_code
from vibes_eval.adapters.openai.chat_answer import server_message as _server_message
from vibes_eval.adapters.openai.exchange import Exchange, TooLarge
from vibes_eval.errors import CheckpointError, ErrorKind, RemoteError, UsageError
from vibes_eval.limits import MAX_RESPONSE_BYTES
from vibes_eval.records import Request, Response
from vibes_eval.safety import redact, redact_deep, register_secret, short, url_without_userinfo

if TYPE_CHECKING:  # annotations only: the loaders do not import detection
    from vibes_eval.adapters.detect import Detection, Profile

__all__ = ["API_KEY_ENV", "OpenAIAdapter", "RemoteError", "add_openai_arguments", "api_root"]

API_KEY_ENV = ("VIBES_EVAL_API_KEY", "OPENAI_API_KEY")
"""Environment variables read for the API key, first set wins."""
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 60.0
DEFAULT_TRIES = 3
GIVE_UP_AFTER = 4  # requests in a row timing out on every try, after which the rest are not sent
RETRY_AFTER_CAP = 20.0  # seconds: a server's Retry-After beyond this is not worth waiting for in a smoke test


def api_root(base_url: str) -> str:
    """`base_url` without a trailing slash or `/v1`: 'http://h:8000/v1/' -> 'http://h:8000'.

    Raises:
        UsageError: not an http(s) URL (a ValueError; exit 2).
    """
    url = (base_url or "").strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise UsageError(f"--base-url: expected an http:// or https:// URL, got {base_url!r}")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _api_key(explicit: str | None) -> str | None:
    return explicit or next((os.environ[v] for v in API_KEY_ENV if os.environ.get(v)), None)


def _encode_png(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAIAdapter(Adapter):
    """A model behind an OpenAI-compatible chat-completions server, behind the Adapter interface."""

    loader = "openai"
    needs_checkpoint = False
    template_name = None
    """The server applies its own chat template; we cannot see or change it."""
    device = "remote"

    @classmethod
    def check_spec(cls, spec: AdapterSpec, detection: Detection | None) -> None:
        """A server decides template, device and dtype; it needs --base-url and --model."""
        super().check_spec(spec, detection)
        for flag, value in (("--template", spec.template), ("--device", spec.device), ("--dtype", spec.dtype)):
            if value:
                raise UsageError(f"{flag}: not available with --adapter openai (the server decides it)")
        if not spec.base_url or not spec.model:
            raise UsageError("--adapter openai needs --base-url URL and --model NAME")

    @classmethod
    def opening_message(cls, spec: AdapterSpec, profile: Profile) -> str:
        return f"connecting to {url_without_userinfo(spec.base_url or '')} ({spec.model})"

    @classmethod
    def open(cls, spec: AdapterSpec, detection: Detection | None, profile: Profile) -> OpenAIAdapter:
        return cls(spec.base_url, spec.model, profile,
                   concurrency=DEFAULT_CONCURRENCY if spec.concurrency is None else spec.concurrency,
                   timeout=DEFAULT_TIMEOUT if spec.timeout is None else spec.timeout)

    @property
    def name(self) -> str:
        return self.model

    def __init__(
        self,
        base_url: str,
        model: str,
        profile: Profile | None = None,
        *,
        api_key: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        tries: int = DEFAULT_TRIES,
        backoff: float = 0.5,
        scoring: bool | None = None,
    ):
        """Check once that the server answers (GET /v1/models), without retries.

        Args:
            base_url: the server, with or without a trailing `/v1`.
            model: the model name the server serves (the `model` field of each request).
            profile: the adapter profile (adapters/openai.yaml), for the fingerprint.
            api_key: sent as a Bearer token; default `$VIBES_EVAL_API_KEY`, else `$OPENAI_API_KEY`.
            concurrency: requests in flight at once.
            timeout: seconds to wait for the server on each request.
            tries: attempts per request on connection errors, timeouts, 429 and 5xx (at least 1).
            backoff: seconds before the first retry; doubles each time.
            scoring: whether the server returns prompt log-probabilities; None (the default): ask it
                once, here, so the capabilities are settled when the adapter is open.

        Raises:
            UsageError: a bad argument (a ValueError; exit 2).
            CheckpointError: the server cannot be reached, or refuses the API key (one line naming the URL).
        """
        if not model:
            raise UsageError("--model: the model name the server serves is required")
        if concurrency < 1 or timeout <= 0 or tries < 1:
            raise UsageError("--concurrency and --timeout must be positive")
        root = api_root(base_url)
        parts = urllib.parse.urlsplit(root)
        try:
            self._host, self._port = parts.hostname, parts.port
        except ValueError as e:
            raise UsageError(f"--base-url: {e}") from None
        if not self._host:
            raise UsageError("--base-url: no host in the URL")
        self._https = parts.scheme.lower() == "https"
        self.root = url_without_userinfo(root)  # what is shown and recorded: never user:password@
        self.base_url = self.root + "/v1"
        self._path_prefix = urllib.parse.urlsplit(self.base_url).path
        self._root_prefix = urllib.parse.urlsplit(self.root).path
        self.model = model
        self.profile = profile
        self.concurrency, self.timeout, self.tries, self.backoff = concurrency, float(timeout), tries, backoff
        self._key = _api_key(api_key)
        register_secret(self._key)
        self._auth = f"Bearer {self._key}" if self._key else None
        if parts.password is not None:  # http://user:password@host: HTTP basic auth, unless a key is given
            user, password = urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password)
            register_secret(password)
            register_secret(f"{user}:{password}")
            if not self._auth:
                self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            register_secret(self._auth.split(" ", 1)[1])
        self._cancel = threading.Event()
        self._unanswered = 0  # requests in a row that timed out on every try
        self._live: set[Exchange] = set()
        self._live_lock = threading.Lock()
        self._images: dict[tuple[str, str], str] = {}  # each image is encoded once per run
        self.server_info, self.server_note = self._probe_server()
        # (prompt log-probabilities offered?, why): asked once, here, unless the caller already knows
        self._scoring = self._probe_scoring() if scoring is None else (scoring, "given by the caller")
        self.supports_scoring = self._scoring[0]
        self.scoring_note = None if self._scoring[0] else redact(self._scoring[1])
        self.supports_templates = self._scoring[0]  # other templates reach the scoring requests as vLLM's `chat_template`

    # -- HTTP -------------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict | None = None, *, native: bool = False) -> Any:
        """One exchange; the parsed JSON body, or RemoteError saying what happened and whether to retry.

        `path` is under `/v1`, or with `native` under the server's root (SGLang's `/generate`).

        http.client, not urllib: no redirect is followed (urllib would resend the Authorization
        header to whatever host a 302 names) and no proxy is consulted; the whole exchange
        (connect, headers, body) must finish within `timeout` seconds, and the body is read up to
        MAX_RESPONSE_BYTES.
        """
        url = (self.root if native else self.base_url) + path
        headers = {"Accept": "application/json", "User-Agent": "vibes-eval"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self._auth:
            headers["Authorization"] = self._auth
        with Exchange(self, url) as ex:
            try:
                status, reason, resp_headers, body = ex.send(method, (self._root_prefix if native else self._path_prefix) + path,
                                                            data, headers)
            except TooLarge:
                raise RemoteError(f"HTTP 200 from {url}: the answer is over {MAX_RESPONSE_BYTES >> 20} MiB: not read") from None
            except (OSError, http.client.HTTPException) as e:  # refused, reset, timeout, bad status line
                if self._cancel.is_set():
                    raise RemoteError(f"cannot connect to {url}: cancelled") from None
                timed_out = ex.expired or isinstance(e, (TimeoutError, socket.timeout))
                why = f"timed out after {self.timeout:g} s" if timed_out else (str(getattr(e, "strerror", None) or e) or type(e).__name__)
                raise RemoteError(redact(f"cannot connect to {url}: {why}"), retry=True, timed_out=timed_out) from None
        if 300 <= status < 400:
            where = short(url_without_userinfo(resp_headers.get("Location") or "?"), 200)
            raise RemoteError(redact(f"HTTP {status} from {url}: redirects to {where}: not followed "
                                     f"(the API key is never sent to another address; give that URL as --base-url)"),
                              status=status)
        if status >= 400:
            after = resp_headers.get("Retry-After")
            hint = f" (set {' or '.join(API_KEY_ENV)})" if status in (401, 403) else ""
            try:
                wait = float(after) if after is not None else None
            except ValueError:  # an HTTP date: rare; our own backoff will do
                wait = None
            raise RemoteError(redact(f"HTTP {status} from {url}: {_server_message(body)}{hint}"), status=status,
                              retry=status == 429 or status >= 500, retry_after=wait, code=_server_code(body))
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise RemoteError(redact(f"HTTP {status} from {url}: not JSON: {_server_message(body)}")) from None

    def _call_with_retries(self, method: str, path: str, payload: dict | None = None, *, native: bool = False) -> Any:
        if self._unanswered >= GIVE_UP_AFTER:  # a server that lets requests time out is not asked 26 x 3 more times
            raise RemoteError(f"not sent: the server at {self.base_url} let {self._unanswered} requests in a row time out "
                              f"(--timeout {self.timeout:g} s, {self.tries} tries each)")
        for attempt in range(self.tries):
            try:
                result = self._call(method, path, payload, native=native)
                self._unanswered = 0
                return result
            except RemoteError as e:
                if not e.retry or attempt == self.tries - 1:
                    if e.timed_out:
                        self._unanswered += 1
                    if e.retry and self.tries > 1:
                        raise RemoteError(f"{e} (after {self.tries} tries)", status=e.status, code=e.code) from None
                    raise
                wait = self.backoff * 2**attempt
                if e.retry_after is not None:
                    wait = min(max(wait, e.retry_after), RETRY_AFTER_CAP)
                if self._cancel.wait(wait):
                    raise RemoteError(f"{e} (cancelled)", status=e.status) from None
        raise AssertionError("unreachable")

    def cancel(self) -> None:
        """Stop everything in flight (Ctrl-C): open requests are cut, no retry or new request starts."""
        self._cancel.set()
        with self._live_lock:
            live = list(self._live)
        for ex in live:
            ex.kill()

    def _probe_server(self) -> tuple[dict | None, str | None]:
        """GET /v1/models once: our model's entry (or None and why). Unreachable or 401/403: CheckpointError."""
        try:
            listing = self._call("GET", "/models")
        except RemoteError as e:
            if e.status is None or e.status in (401, 403):
                raise CheckpointError(str(e)) from None
            return None, f"GET /v1/models: {e}"  # some servers do not list models; chat may still work
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            return None, "GET /v1/models: no `data` list in the answer"
        for entry in entries:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                # `created` is the server's start time: it would make two runs' fingerprints differ
                return redact_deep({k: v for k, v in entry.items() if k != "created"}), None
        names = ", ".join(short(e.get("id"), 80) for e in entries[:50] if isinstance(e, dict))[:200]
        return None, redact(f"model {self.model!r} is not among the server's models ({names or 'none'})")

    # -- the Adapter interface ----------------------------------------------------------------
    def _image_uri(self, path: Path | None, variant: str) -> str:
        from PIL import Image

        from vibes_eval.limits import open_image

        if path is None:
            raise ValueError("the request has no image file")
        key = (str(path), "blank" if variant == "blank" else "real")
        if key not in self._images:
            im = open_image(Path(path))  # the pixel count is checked before decoding
            if key[1] == "blank":  # the CLIP mean colour LLaVA pads with (as loaders.hf.load_image)
                im = Image.new("RGB", im.size, (122, 116, 104))
            self._images[key] = _encode_png(im)
        return self._images[key]

    def _one(self, r: Request) -> Response:
        def error(msg: str, kind: ErrorKind = ErrorKind.REMOTE) -> Response:
            return Response(prompt_id=r.prompt_id, variant=r.variant, finish="error", error=msg, error_kind=kind)

        if r.template:
            return error(f"template {r.template!r} was asked for, but the server applies its own chat template", ErrorKind.UNSUPPORTED)
        try:
            uri = self._image_uri(r.image, r.variant)
        except Exception as e:  # noqa: BLE001 - an unreadable image is this prompt's error, not the run's
            return error(f"{r.image}: cannot read image: {type(e).__name__}: {short(str(e).splitlines()[0] if str(e) else '', 200)}",
                         ErrorKind.IMAGE_UNREADABLE)
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": uri}},
                {"type": "text", "text": r.question},
            ]}],
            "max_tokens": r.max_new_tokens,
            "temperature": 0,
        }
        if self.profile is not None and self.profile.stop_strings:
            payload["stop"] = list(self.profile.stop_strings)
        try:
            data = self._call_with_retries("POST", "/chat/completions", payload)
        except RemoteError as e:  # `vibes-eval serve` names the kind of a crash in the error's `code`
            return error(str(e), _KINDS.get(e.code or "", ErrorKind.REMOTE))
        return _parse_answer(r, data, f"{self.base_url}/chat/completions")

    def generate(self, requests: list[Request]) -> list[Response]:
        """One chat completion per request, `concurrency` at a time; an HTTP failure is an error Response."""
        if not requests:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests)), thread_name_prefix="vibes-openai")
        try:
            futures = [pool.submit(self._one, r) for r in requests]
            out = [f.result() for f in futures]
        except BaseException:  # Ctrl-C: cut what is in flight, start nothing more, return at once
            self.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return out

    def _probe_scoring(self) -> tuple[bool, str]:
        """Whether the server returns prompt log-probabilities, and why (one request, with a small grey image)."""
        from PIL import Image

        from vibes_eval.adapters.openai.prompt_logprobs import probe_support

        grey = _encode_png(Image.new("RGB", (64, 64), (122, 116, 104)))
        offered, why = probe_support(lambda payload: self._call_with_retries("POST", "/chat/completions", payload), self.model, grey)
        return offered, why if offered else why + _why_not((self.server_info or {}).get("owned_by"))

    def score(self, requests: list[Request], targets: list[str]) -> list[float | None]:
        """Mean log-likelihood per token of each target, from the server's prompt log-probabilities.

        Raises:
            NotImplementedError: the server offers none (check `supports_scoring` first).
            ProtocolError: some requests failed or came back malformed (the runner reports it).
        """
        if not self.supports_scoring:
            raise NotImplementedError(f"the server gives no prompt log-probabilities: {self._scoring[1]}")
        from vibes_eval.adapters.openai.prompt_logprobs import score_over_server

        try:
            return score_over_server(lambda payload: self._call_with_retries("POST", "/chat/completions", payload),
                                     self._image_uri, self.model, requests, targets, self.concurrency)
        except BaseException:  # Ctrl-C: cut the requests in flight
            self.cancel()
            raise

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """The fingerprint: which server and model, as far as the server tells (docs/architecture.md, 'The fingerprint')."""
        from vibes_eval.resources import VERSION

        fp = {
            "architecture": "remote",
            "loader": "openai",
            "profile": self.profile.name if self.profile else "openai",
            "base_url": self.base_url,
            "model": self.model,
            "template": "server chat template",
            "dtype": "unknown",
            "device": "remote",
            "server": self.server_info,
            "request": {"temperature": 0, "concurrency": self.concurrency, "timeout_s": self.timeout, "tries": self.tries},
            "versions": {"vibes_eval": VERSION, "python": platform.python_version()},
        }
        if self.server_note:
            fp["server_note"] = redact(self.server_note)
        fp["prompt_logprobs"] = redact(self._scoring[1])
        return fp


def _why_not(owner: object) -> str:
    """What the server's kind says about prompt log-probabilities with an image over chat completions."""
    if owner == "vllm":
        return ("; vLLM returns prompt log-probabilities for text prompts only, not for image prompts over chat completions "
                "(vllm-project/vllm#16107)")
    if owner == "sglang":
        return "; SGLang returns them from its native /generate: use --adapter sglang"
    return ""


def add_openai_arguments(parser) -> None:
    """The `run` flags of the openai loader: --base-url, --model, --concurrency, --timeout."""
    g = parser.add_argument_group("OpenAI-compatible server (--adapter openai)")
    g.add_argument("--base-url", metavar="URL",
                   help="server URL, with or without /v1 (API key from $VIBES_EVAL_API_KEY, else $OPENAI_API_KEY)")
    g.add_argument("--model", metavar="NAME", help="model name the server serves")
    g.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N", help="requests in flight at once (default: 4)")
    g.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="seconds per request (default: 60)")


def suggested_suite(base_url: str, model: str, timeout: float | None = None) -> str | None:
    """The bundled suite the server says its model should be asked (`vibes-eval serve` says `shapes` for a toy).

    One GET /v1/models, no retry, at most 10 s; None when the server says nothing we know, or
    cannot be asked (the run itself then says what is wrong). Only a bundled suite's name is
    taken: a server never names a file.
    """
    from vibes_eval.resources import BUNDLED_SUITES

    try:
        probe = OpenAIAdapter(base_url, model, timeout=min(timeout or DEFAULT_TIMEOUT, 10.0), tries=1,
                              scoring=False)  # the models list only: the run's own adapter asks about scoring
    except (UsageError, CheckpointError):
        return None
    name = (probe.server_info or {}).get("suite")
    return name if isinstance(name, str) and name in BUNDLED_SUITES else None


def server_owner(base_url: str, model: str, timeout: float | None = None) -> str | None:
    """Who serves `model`: its /v1/models entry's `owned_by` (`sglang`, `vllm`, ...), or None when it cannot be told.

    One GET /v1/models, no retry, at most 10 s, no scoring probe.
    """
    try:
        probe = OpenAIAdapter(base_url, model, timeout=min(timeout or DEFAULT_TIMEOUT, 10.0), tries=1, scoring=False)
    except (UsageError, CheckpointError):
        return None
    owner = (probe.server_info or {}).get("owned_by")
    return owner if isinstance(owner, str) else None
