"""Throwaway HTTP servers on 127.0.0.1 for the client tests."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

NO_PROMPT_LOGPROBS = {"error": {"message": "prompt_logprobs is not supported for multimodal models", "type": "BadRequestError"}}
"""What a server without the prompt-logprob extension answers the probe (a 400), as vLLM does for an image prompt."""


def is_capability_probe(body: bytes | dict) -> bool:
    """The one request an OpenAIAdapter sends while it opens: does the server return prompt log-probabilities?

    (A scoring request for the question "?" without an answer, asking one new token.) Stubs that
    script or count the chat completions answer it apart, as a server without the extension would.
    """
    if isinstance(body, bytes):
        try:
            body = json.loads(body or b"{}")
        except ValueError:
            return False
    try:
        return body.get("prompt_logprobs") is not None and body["messages"][0]["content"][-1]["text"] == "?" \
            and len(body["messages"]) == 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return False


@contextmanager
def until_done(server, thread):
    """Yield the base URL of `server` (serving from `thread`); shut both down afterwards."""
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def running(handler):
    """Serve `handler` (a BaseHTTPRequestHandler class) on 127.0.0.1:<free port> from a thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with until_done(server, thread) as url:
        yield url
