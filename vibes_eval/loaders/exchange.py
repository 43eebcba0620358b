"""One HTTP exchange with a total deadline, a body cap and cancellation (for loaders/openai.py).

`Exchange(adapter, url)` opens its own http.client connection (no redirects followed, no proxy),
sends one request and reads the body up to limits.MAX_RESPONSE_BYTES (`TooLarge` beyond). A
watchdog timer shuts the socket down `adapter.timeout` seconds after the start, whatever the
server does; `kill()` does the same at once (the adapter's `cancel()` on Ctrl-C). The adapter
supplies `_host`, `_port`, `_https`, `timeout`, `_cancel` (an Event) and `_live` / `_live_lock`
(the exchanges in flight).
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

from vibes_eval.limits import MAX_RESPONSE_BYTES

__all__ = ["Exchange", "TooLarge"]


class TooLarge(Exception):
    """A response body over MAX_RESPONSE_BYTES."""


class Exchange:
    """One HTTP request on its own connection, with a total deadline and a way to cancel it.

    A watchdog timer shuts the socket down when `timeout` seconds have passed since the request
    started, whatever the server is doing (dripping a byte a second resets no per-read timer);
    the adapter's `cancel()` does the same to every exchange in flight (Ctrl-C).
    """

    def __init__(self, adapter, url: str):
        self.adapter, self.url = adapter, url
        self.conn: http.client.HTTPConnection | None = None
        self.expired = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self.adapter._live_lock:
            self.adapter._live.discard(self)
        if self.conn is not None:
            self.conn.close()

    def kill(self) -> None:
        """Shut the socket down: a blocked read returns at once."""
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed or never connected
                pass

    def _expire(self) -> None:
        self.expired = True
        self.kill()

    def send(self, method: str, path: str, data: bytes | None, headers: dict) -> tuple[int, str, Any, bytes]:
        a = self.adapter
        if a._cancel.is_set():
            raise OSError("cancelled")
        cls = http.client.HTTPSConnection if a._https else http.client.HTTPConnection
        self.conn = cls(a._host, a._port, timeout=a.timeout)
        with a._live_lock:
            a._live.add(self)
        self._timer = threading.Timer(a.timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        chunks, size = [], 0
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise TooLarge()
            chunks.append(chunk)
        if self.expired:  # the watchdog cut the body short
            raise TimeoutError()
        return resp.status, resp.reason, resp.headers, b"".join(chunks)
