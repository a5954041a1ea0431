"""uvicorn's httptools protocol with a bound on a request's head (request line and headers).

h11, uvicorn's pure-Python parser, refuses a head it has buffered 16 KB of without its
end. httptools keeps every byte: the URL and each header go into Python objects until the
blank line comes, so anyone, logged in or not, could send one endless head per connection
and fill the server's memory. Here a head that passes ``MAX_HEAD_BYTES`` gets a 400 and
the connection is closed, as h11 does.

A head must also end within ``HEAD_SECONDS`` of the connection opening (or of the
request's first byte on a kept-alive connection), else the connection is closed: one
byte every few seconds (slowloris) no longer holds a connection, and a file descriptor,
for as long as the client likes. A body is not timed here.

The bytes are counted per read, after the parser has taken them: a read that ends still
inside the head of the request it began in is head, whole. The read in which a request
begins is not counted (part of it may be the request before), so a head may pass the
bound by one read (64 KB on asyncio, 256 KB on uvloop) before it is refused.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The request line and headers of one request. The sync client sends well under 1 KB.
MAX_HEAD_BYTES = 64 * 1024
# From a connection's opening (or a request's first byte) to the end of its headers.
HEAD_SECONDS = 10.0
# What ``uvicorn.Config(http=...)`` takes: every uvicorn that serves duru's app uses it.
PROTOCOL = "duru.server.http_head:BoundedHttpToolsProtocol"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` refusing a request head longer than ``MAX_HEAD_BYTES``."""

    _in_head = False  # between a request's first byte and the end of its headers
    _begun = 0  # requests begun on this connection
    _head = 0  # bytes of the current request's head counted so far
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._time_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _time_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.warning("Request head not received in time: connection closed.")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        begun, in_head = self._begun, self._in_head
        super().data_received(data)
        if not (in_head and self._in_head and self._begun == begun):
            return
        self._head += len(data)
        if self._head > MAX_HEAD_BYTES and not self.transport.is_closing():
            msg = "Request head too large."
            self.logger.warning(msg)
            self.send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun += 1
        self._in_head = True
        self._head = 0
        self._time_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()
