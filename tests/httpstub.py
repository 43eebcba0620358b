"""Throwaway HTTP servers on 127.0.0.1 for the client tests."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


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
