"""The bounds of `vibes-eval serve` against many or slow clients (stdlib http.server underneath).

- `BoundedServer`: at most MAX_CONNECTIONS connections (one thread each) at once, more are
  closed at once; IPv4 or IPv6; a client that hangs up is no error, any other failure of a
  request is one line in the log, never a traceback.
- `HeaderDeadline`: a handler mixin; the request line and headers must arrive within the
  server's `header_timeout` seconds in all, not per read, so a client that drips them a byte at
  a time cannot hold a connection for ever. Every read also times out after that long.
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import ThreadingHTTPServer

from vibes_eval.safety import say, short, strip_control

__all__ = ["MAX_CONNECTIONS", "BoundedServer", "HeaderDeadline"]

MAX_CONNECTIONS = 32  # open connections (threads); more are closed at once


class HeaderDeadline:
    """Mixin for a BaseHTTPRequestHandler (before it in the bases) served by a BoundedServer."""

    def setup(self):
        super().setup()
        timeout = self.server.header_timeout
        self.connection.settimeout(timeout)  # a client that stops sending is dropped
        self._late = self._parsed = False
        self._clock_lock = threading.Lock()  # the deadline and the parsed headers: exactly one of them wins
        self._header_clock = threading.Timer(timeout, self._drop_late)
        self._header_clock.daemon = True
        self._header_clock.start()

    def _drop_late(self) -> None:
        with self._clock_lock:
            if self._parsed:  # the headers came in just in time: the request goes ahead
                return
            self._late = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)  # the blocked read returns: the handler ends
        except OSError:  # already closed
            pass

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers
        self._header_clock.cancel()
        with self._clock_lock:
            self._parsed = True
            return ok and not self._late

    def send_error(self, code, message=None, explain=None):
        if self._late:  # dropped: a half request line gets no answer on a socket already shut
            self.close_connection = True
            return
        super().send_error(code, message, explain)

    def finish(self):
        self._header_clock.cancel()
        super().finish()


class BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer for IPv4 or IPv6 hosts, with at most MAX_CONNECTIONS connections at once."""

    daemon_threads = True  # a client that hangs up mid-request never blocks shutdown
    max_connections = MAX_CONNECTIONS
    header_timeout = 30.0  # seconds for a request line and its headers, in all (HeaderDeadline)
    log = None  # one line per failed request; stderr when None

    def __init__(self, address, handler):
        if ":" in address[0]:  # ::1, fe80::..: an IPv6 literal
            self.address_family = socket.AF_INET6
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many connections: drop this one at once
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        """A client that hung up is not an error; anything else is one line in the log, never a traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        line = strip_control(f"{client_address[0]} request failed: {type(exc).__name__}: {short(str(exc), 300)}", newlines=False)
        (self.log or say)(line)
