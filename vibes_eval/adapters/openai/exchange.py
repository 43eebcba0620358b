"""One HTTP exchange with a total deadline, a body cap and cancellation (for adapters/openai/model.py).

`Exchange(adapter, url)` opens its own http.client connection (no redirects followed, no proxy),
sends one request and reads the body up to limits.MAX_RESPONSE_BYTES (`TooLarge` beyond). Its
socket gives every read and write only what is left of `adapter.timeout` seconds from the start,
whatever the server does; `kill()` cuts it at once (the adapter's `cancel()` on Ctrl-C). The adapter
supplies `_host`, `_port`, `_https`, `timeout`, `_cancel` (an Event) and `_live` / `_live_lock`
(the exchanges in flight).
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from typing import Any

from vibes_eval.limits import MAX_RESPONSE_BYTES

__all__ = ["Exchange", "TooLarge"]


class TooLarge(Exception):
    """A response body over MAX_RESPONSE_BYTES."""


class _DeadlineSocket:
    """A connected socket whose every send and receive waits at most until one deadline (not per call).

    http.client reads the status line and headers a line at a time and the body in blocks; with
    a plain timeout each recv gets the full timeout again, so a server dripping a byte a second
    is never cut. Here each call's timeout is what is left of the request's deadline.
    """

    def __init__(self, sock, deadline: float, exchange: Exchange):
        self._sock, self._deadline, self._exchange = sock, deadline, exchange

    def _left(self) -> float:
        if self._exchange.cancelled:
            raise OSError("cancelled")
        left = self._deadline - time.monotonic()
        if left <= 0:
            self._exchange.expired = True
            raise TimeoutError("deadline passed")
        self._sock.settimeout(left)
        return left

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._left()
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        self._left()
        return self._sock.recv(bufsize, flags)

    def sendall(self, data, flags=0):
        view = memoryview(data if not isinstance(data, str) else data.encode())
        while view:  # in blocks, so a server that stops reading cannot hold us past the deadline either
            self._left()
            n = self._sock.send(view[: 1 << 16], flags)
            view = view[n:]

    def makefile(self, mode="rb", buffering=None, **kwargs):
        if "r" not in mode or "w" in mode:
            return self._sock.makefile(mode, buffering, **kwargs)
        self._sock._io_refs += 1  # as socket.makefile does: closing the file releases the socket
        return io.BufferedReader(socket.SocketIO(self, "rb"), io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _connection_class(https: bool, deadline: float, exchange: Exchange):
    base = http.client.HTTPSConnection if https else http.client.HTTPConnection

    class Connection(base):
        def connect(self):
            super().connect()
            self.sock = _DeadlineSocket(self.sock, deadline, exchange)

    return Connection


class Exchange:
    """One HTTP request on its own connection, with a total deadline and a way to cancel it.

    Every read and write of the request waits at most until `adapter.timeout` seconds after
    its start, whatever the server does (dripping a byte a second resets no per-read timer);
    the adapter's `cancel()` calls `kill()` on every exchange in flight (Ctrl-C).
    """

    def __init__(self, adapter, url: str):
        self.adapter, self.url = adapter, url
        self.conn: http.client.HTTPConnection | None = None
        self.expired = False
        self.cancelled = False

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc) -> None:
        with self.adapter._live_lock:
            self.adapter._live.discard(self)
        if self.conn is not None:
            self.conn.close()

    def kill(self) -> None:
        """Cut the exchange: a blocked read returns at once, and the next one fails."""
        self.cancelled = True
        sock = getattr(self.conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed or never connected
                pass

    def send(self, method: str, path: str, data: bytes | None, headers: dict) -> tuple[int, str, Any, bytes]:
        a = self.adapter
        deadline = time.monotonic() + a.timeout
        self.conn = _connection_class(a._https, deadline, self)(a._host, a._port, timeout=a.timeout)
        with a._live_lock:  # in the live set before looking at the cancel flag: `cancel()` sees it, or it sees `cancel()`
            a._live.add(self)
        if a._cancel.is_set():
            raise OSError("cancelled")
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        chunks, size = [], 0
        while True:
            chunk = resp.read1(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise TooLarge()
            chunks.append(chunk)
        return resp.status, resp.reason, resp.headers, b"".join(chunks)
