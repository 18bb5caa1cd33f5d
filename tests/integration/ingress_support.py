"""Run the real ingress app against the real broker, and read back what it published."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.structs import ConsumerRecord

from callstream.health import wait_http_ok
from callstream.ingest.app import METRICS, PUBLISHER, create_app
from callstream.ingest.auth import TokenSet
from callstream.ingest.settings import IngressSettings
from callstream.kafka.broker import free_port
from callstream.schemas.headers import REQUEST_ID
from callstream.schemas.topics import topic_names
from tests.kafka_support import Missing

TOKEN = "test-token-" + "a1b2c3d4e5f6a7b8"
SAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "samples"
# The ingress as deployed by default: the 64 KiB body limit, no optional checks.
NOT_DEFAULT = (
    "CALLSTREAM_MAX_BODY_BYTES",
    "CALLSTREAM_WEBHOOK_SIGNING_SECRET",
    "CALLSTREAM_ALLOWED_CIDRS",
    "CALLSTREAM_TRUSTED_PROXIES",
    "CALLSTREAM_INGEST_PROCESSES",
)


JSON = {"Content-Type": "application/json"}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sent_as(request_id: str) -> dict[str, str]:
    """Headers of a POST whose record the test can find again: the ingress keeps a valid
    X-Request-Id and writes it to the record's ``callstream-request-id`` header."""
    return {**JSON, "X-Request-Id": request_id}


def request_id(record: ConsumerRecord) -> str:
    return dict(record.headers)[REQUEST_ID].decode()


def request_ids(records: list[ConsumerRecord]) -> list[str]:
    return [request_id(record) for record in records]


def lacking(acked: set[str]) -> Missing:
    """What :func:`read_until` waits for: every acknowledged request's record."""

    def missing(records: list[ConsumerRecord]) -> str | None:
        lost = acked - set(request_ids(records))
        return f"{len(lost)} acknowledged requests not stored: {sorted(lost)[:5]}" if lost else None

    return missing


def default_env() -> dict[str, str]:
    """This process's environment without what would change the ingress's defaults."""
    return {key: value for key, value in os.environ.items() if key not in NOT_DEFAULT}


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


@dataclass(frozen=True)
class IngressProcess:
    """A `callstream ingest` process and its port on 127.0.0.1."""

    port: int
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def ingress_process(
    env: Mapping[str, str], bootstrap: str, prefix: str, log: Path, ready_s: float = 60.0
) -> AsyncIterator[IngressProcess]:
    """`callstream ingest` on a free port of 127.0.0.1 with ``env`` (plus the test token, the
    broker and the topic prefix), ready; its output in ``log``. Stopped with SIGTERM at the end
    unless it exited already (killed after 30 s); its exit code is ``process.returncode``."""
    port = free_port()
    env = {
        **env,
        "CALLSTREAM_WEBHOOK_TOKENS": TOKEN,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "callstream", "ingest", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    ingress = IngressProcess(port, process)
    try:
        if not await asyncio.to_thread(wait_http_ok, f"{ingress.url}/readyz", ready_s):
            tail = (await asyncio.to_thread(log.read_text))[-3000:]
            raise AssertionError(f"the ingress did not become ready:\n{tail}")
        yield ingress
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
