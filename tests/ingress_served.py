"""The ingress served as in production (``ingest.server.listening``: the connection gate, the
timeouts) on a free port, without Kafka: its publisher acknowledges every send at once. For
tests of what the HTTP side does on its own."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from callstream.ingest.app import create_app
from callstream.ingest.auth import TokenSet
from callstream.ingest.publisher import Ack, Headers, Publisher
from callstream.ingest.server import listening
from callstream.ingest.settings import IngressSettings
from tests.raw_http import RawResponse, close, connect, read_response, request

TOKEN = "slow-test-token-0123456789"  # noqa: S105 - a test token
WEBHOOK = f"/webhooks/omicall/{TOKEN}"
EVENT = (
    Path(__file__).resolve().parents[1] / "schemas" / "samples" / "event-ringing.json"
).read_bytes()


class AckingPublisher(Publisher):
    """Acknowledges every send at once, without Kafka."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:9", send_timeout_s=1.0, linger_ms=0)
        self._offsets = itertools.count()

    async def start(self) -> None:
        return None

    async def stop(self, flush_timeout_s: float = 10.0) -> None:
        return None

    def ready(self, window_s: float) -> bool:
        return True

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Ack:
        return Ack(topic, 0, next(self._offsets))


@asynccontextmanager
async def serving(**overrides: object) -> AsyncIterator[int]:
    """The ingress on a free port with these settings; yields the port."""
    settings = replace(IngressSettings(tokens=TokenSet.parse(TOKEN)), **overrides)  # type: ignore[arg-type]
    async with listening(create_app(settings, AckingPublisher()), settings, "127.0.0.1", 0) as port:
        yield port


async def get(port: int, path: str) -> RawResponse:
    """One request on a connection of its own."""
    reader, writer = await connect(port)
    try:
        writer.write(request("GET", path, Connection="close"))
        return await read_response(reader)
    finally:
        await close(writer)


def metric(exposition: bytes, line_start: str) -> float:
    for line in exposition.decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def webhook(body: bytes = EVENT) -> bytes:
    return request("POST", WEBHOOK, body, Content_Type="application/json")
