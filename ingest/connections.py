"""Each ingress process's guard on its client connections: a bound on how many are open at
once, and a deadline for every request's line and headers.

aiohttp closes a keep-alive connection that stays idle (``keepalive_timeout``), but a client
that sends its headers a byte at a time keeps its connection as long as it likes. The gate wraps
the protocol aiohttp's ``web.Server`` makes for each connection: it refuses connections over the
bound (503, closed at once), closes a connection whose request has not reached the handler
within ``header_timeout_s`` (408 when part of a request came, silently when nothing did), and
drops one whose client has not read what it was sent for ``write_timeout_s`` (the socket's
buffer full: no other timer runs while a handler waits to write). The body has a deadline of its
own, in ``body.read_limited``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import cast

import orjson
from aiohttp import StreamReader, web

from callstream.ingest.app import RETRY_AFTER_S
from callstream.ingest.metrics import IngressMetrics
from callstream.webapp import Handler


def canned_response(status: HTTPStatus, code: str, detail: str, *extra: str) -> bytes:
    """A complete HTTP/1.1 error response that closes the connection, in the app's JSON shape."""
    body = orjson.dumps({"error": code, "detail": detail})
    head = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ConnectionGate:
    """Admits up to ``max_connections`` connections at once (CALLSTREAM_MAX_CONNECTIONS, 1000)
    and gives each request ``header_timeout_s`` (CALLSTREAM_HEADER_TIMEOUT, 10 s) from its
    first byte, or from the connection's start for its first request, to reach the handler.

    Install both halves: ``middleware`` first in the app's middlewares (it tells the gate when
    a request reaches the handler and when it is done), ``protocol_factory`` as the protocol
    factory of ``loop.create_server``."""

    def __init__(
        self,
        metrics: IngressMetrics,
        *,
        max_connections: int,
        header_timeout_s: float,
        write_timeout_s: float,
    ) -> None:
        self.metrics = metrics
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.write_timeout_s = write_timeout_s
        self.open: dict[web.RequestHandler, GuardedConnection] = {}
        self.refusal = canned_response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "too_many_connections",
            "this ingress process has too many open connections",
            f"Retry-After: {RETRY_AFTER_S}",
        )
        self.late_headers = canned_response(
            HTTPStatus.REQUEST_TIMEOUT,
            "header_timeout",
            f"the request headers did not arrive within {header_timeout_s:g} s",
        )

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """For ``loop.create_server``: aiohttp's protocol for ``server``, behind the gate."""
        return lambda: GuardedConnection(self, server)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = self.open.get(request.protocol)
        if connection is None:  # served without the gate (aiohttp's test server)
            return await handler(request)
        connection.request_started()
        try:
            response = await handler(request)
            if response.status == HTTPStatus.REQUEST_TIMEOUT:
                # The body is too slow to wait for: answer now and close, rather than let
                # aiohttp read the rest of it (its lingering close) before closing.
                await response.prepare(request)
                await response.write_eof()
                connection.close()
            return response
        finally:
            connection.request_ended(request.content)


class GuardedConnection(asyncio.Protocol):
    """One client connection: aiohttp's ``RequestHandler`` inside, the gate's rules around it.
    Every protocol callback is passed on to the handler once the connection is admitted."""

    def __init__(self, gate: ConnectionGate, server: web.Server) -> None:
        self._gate = gate
        self._server = server
        self._handler: web.RequestHandler | None = None
        self._transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._awaiting_request = True  # no request in the handler: the header deadline applies
        self._request_begun = False  # bytes of the awaited request have arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        gate = self._gate
        stream = cast(asyncio.Transport, transport)  # a TCP server's transports are streams
        if len(gate.open) >= gate.max_connections:
            gate.metrics.observe_closed("over_limit")
            stream.write(gate.refusal)
            stream.close()
            return
        handler = self._server()
        self._handler, self._transport = handler, stream
        gate.open[handler] = self
        gate.metrics.open_connections.inc()
        handler.connection_made(transport)
        self._arm()  # the first request's deadline runs from the connection's start

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if self._awaiting_request and not self._request_begun:
            self._request_begun = True
            if self._deadline is None:
                self._arm()
        self._handler.data_received(data)

    def eof_received(self) -> None:  # None, as aiohttp's: the transport closes itself
        if self._handler is not None:
            self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is not None:
            loop = asyncio.get_running_loop()
            self._write_deadline = loop.call_later(self._gate.write_timeout_s, self._write_late)
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._cancel_write_deadline()
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_write_deadline()
        handler, self._handler = self._handler, None
        if handler is None:
            return
        del self._gate.open[handler]
        self._gate.metrics.open_connections.dec()
        handler.connection_lost(exc)

    def request_started(self) -> None:
        """A request's line and headers are in and it reached the handler."""
        self._awaiting_request = False
        self._request_begun = False
        self._disarm()

    def request_ended(self, body: StreamReader) -> None:
        """The handler is done; the next request's deadline starts with its first byte. Until
        the body is read to its end, what arrives is the body's rest (aiohttp reads and drops
        it, for a bounded time), not the next request."""
        body.on_eof(self._await_request)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.force_close()

    def _await_request(self) -> None:
        self._awaiting_request = True

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._gate.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cancel_write_deadline(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None

    def _write_late(self) -> None:
        """The client left its responses unread: drop the connection (a close would wait for
        the unsent bytes to drain)."""
        self._write_deadline = None
        if self._transport is not None:
            self._gate.metrics.observe_closed("write_timeout")
            self._transport.abort()

    def _headers_late(self) -> None:
        self._deadline = None
        if self._handler is None or not self._awaiting_request:
            return
        self._gate.metrics.observe_closed("header_timeout")
        if self._request_begun and self._transport is not None:
            self._transport.write(self._gate.late_headers)
        self._handler.force_close()
