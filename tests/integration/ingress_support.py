"""Run the real ingress app against the real broker, and read back what it published."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from callstream.ingest.app import create_app
from callstream.ingest.auth import TokenSet
from callstream.ingest.settings import IngressSettings
from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED, topic_names

TOKEN = "test-token-" + "a1b2c3d4e5f6a7b8"
SAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "samples"
INGRESS_TOPICS = (CALL_EVENTS, CDRS, REJECTED)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@dataclass(frozen=True)
class Ingress:
    client: TestClient
    bootstrap: str
    topics: dict[str, str]  # logical name -> name on the cluster

    def url(self, token: str = TOKEN) -> str:
        return f"/webhooks/omicall/{token}"


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


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
    settings: IngressSettings, *, create: bool = True, ready: bool = True
) -> AsyncIterator[Ingress]:
    topics = topic_names(settings.topic_prefix)
    if create:
        await create_topics(settings.bootstrap_servers, [topics[n] for n in INGRESS_TOPICS])
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        if ready:
            await wait_ready(client)
        yield Ingress(client, settings.bootstrap_servers, topics)
    finally:
        await client.close()


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, deadline_s: float = 30.0, settle_s: float = 0.0
) -> list[ConsumerRecord]:
    """Every record of ``topic``: waits until ``expect`` arrived (or the deadline), then for
    ``settle_s`` more to catch any extra record that should not be there."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + deadline_s
        while len(records) < expect and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records += batch
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
    finally:
        await consumer.stop()
    return records
