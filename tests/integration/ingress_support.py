"""Run the real ingress app against the real broker, and read back what it published."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callstream.ingest.app import METRICS, PUBLISHER, create_app
from callstream.ingest.auth import TokenSet
from callstream.ingest.settings import IngressSettings
from callstream.schemas.topics import topic_names

TOKEN = "test-token-" + "a1b2c3d4e5f6a7b8"
SAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@dataclass(frozen=True)
class Ingress:
    client: TestClient
    bootstrap: str
    topics: dict[str, str]  # logical name -> name on the cluster

    def url(self, token: str = TOKEN) -> str:
        return f"/webhooks/omicall/{token}"


async def wait_ready(client: TestClient, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        response = await client.get("/readyz")
        if response.status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the ingress did not become ready")


def ingress_settings(bootstrap: str, **overrides: object) -> IngressSettings:
    base = IngressSettings(
        tokens=TokenSet.parse(TOKEN),
        bootstrap_servers=bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        send_timeout_s=3.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def running_ingress(
    settings: IngressSettings, *, ready: bool = True
) -> AsyncIterator[Ingress]:
    """The ingress app on a test server; it creates its own topics once connected."""
    topics = topic_names(settings.topic_prefix)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        if ready:
            await wait_ready(client)
        yield Ingress(client, settings.bootstrap_servers, topics)
    finally:
        await client.close()


@dataclass(frozen=True)
class Served:
    """The ingress on 127.0.0.1:``port``, and its app (to read its metrics)."""

    app: web.Application
    port: int

    def metric(self, name: str, **labels: str) -> float | None:
        return self.app[METRICS].registry.get_sample_value(name, labels)


@asynccontextmanager
async def serving_ingress(settings: IngressSettings) -> AsyncIterator[Served]:
    """The ingress on a real socket (unlike aiohttp's TestServer, a handler is not cancelled
    when its client leaves), aiohttp's access log on; connected to Kafka."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        listening = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, listening).start()
        publisher = runner.app[PUBLISHER]
        await wait_until(lambda: publisher.ready(settings.ready_window_s), "Kafka", 30.0)
        yield Served(runner.app, listening.getsockname()[1])
    finally:
        await runner.cleanup()


async def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
