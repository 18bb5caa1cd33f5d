"""The broker creates no topic; the services refuse wrong topics, and publish nothing before
their topics are prepared."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from callstream.ingest import publisher as publisher_module
from callstream.ingest.publisher import MISMATCHED, NOT_PREPARED, Publisher, PublishUnavailable
from callstream.kafka.broker import free_port
from callstream.kafka.topiccheck import TopicMismatch
from callstream.processors.app import changelog_topic_name
from callstream.settings import KafkaSettings
from tests.integration.cli_helpers import callstream
from tests.integration.ingress_support import (
    TOKEN,
    ingress_settings,
    running_ingress,
    sample,
    wait_until,
)

JSON = {"Content-Type": "application/json"}
HEADLINE = "error: Kafka's topics are not what callstream needs:"


async def _create(bootstrap: str, topics: dict[str, tuple[int, str]]) -> None:
    """Create ``topics``: name -> (partitions, cleanup policy)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, count, 1, topic_configs={"cleanup.policy": policy})
                for name, (count, policy) in topics.items()
            ]
        )
    finally:
        await admin.close()


async def _topic_exists(bootstrap: str, name: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return name in await admin.list_topics()
    finally:
        await admin.close()


async def test_the_broker_creates_no_topic_on_first_use(
    kafka_bootstrap: str, kafka_settings: KafkaSettings
) -> None:
    if kafka_settings.bootstrap_servers:
        pytest.skip("an existing cluster's configuration is its own")
    name = f"unknown-{uuid.uuid4().hex[:12]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=2000)
    await producer.start()
    try:
        # Its metadata requests allow auto-creation: a broker that allowed it too would
        # create the topic (num.partitions=1) and take the record.
        with pytest.raises(UnknownTopicOrPartitionError):
            await producer.send_and_wait(name, b"record")
    finally:
        await producer.stop()
    assert not await _topic_exists(kafka_bootstrap, name)


async def _refusal(env: dict[str, str], *argv: str, deadline_s: float) -> str:
    """What ``callstream *argv`` says when it refuses to start on wrong topics: exit 1, the
    headline, no traceback."""
    run = await asyncio.to_thread(callstream, *argv, env=env, timeout=deadline_s)
    assert run.code == 1, run.stderr
    assert HEADLINE in run.stderr
    assert "Traceback" not in run.stderr
    return run.stderr


def _prefix() -> str:
    return f"chk{uuid.uuid4().hex[:10]}."


async def test_the_worker_refuses_to_start_on_split_or_deleting_topics(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    prefix = _prefix()
    app_id = f"{prefix}worker"
    changelog = changelog_topic_name(app_id)
    await _create(
        kafka_bootstrap,
        {f"{prefix}omicall.call-events": (3, "delete"), changelog: (6, "delete")},
    )
    env = {
        **cli_env,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
        "CALLSTREAM_APP_ID": app_id,
        "CALLSTREAM_STORE": "memory",
        "CALLSTREAM_DATA_DIR": str(tmp_path / "worker"),
    }
    refusal = await _refusal(env, "worker", "--web-port", str(free_port()), deadline_s=120)
    assert (
        f"topic {prefix}omicall.call-events has 3 partitions, {prefix}omicall.cdrs has 6: "
        "the join needs equal counts (registry: 6). Add partitions: kafka-topics.sh "
        f"--bootstrap-server {kafka_bootstrap} --alter --topic {prefix}omicall.call-events "
        "--partitions 6"
    ) in refusal
    assert f"topic {changelog} has cleanup.policy=delete, callstream needs compact" in refusal


async def test_the_ingress_refuses_to_start_on_split_topics(
    kafka_bootstrap: str, cli_env: dict[str, str]
) -> None:
    prefix = _prefix()
    await _create(kafka_bootstrap, {f"{prefix}omicall.cdrs": (12, "delete")})
    env = {
        **cli_env,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
        "CALLSTREAM_WEBHOOK_TOKENS": TOKEN,
    }
    refusal = await _refusal(env, "ingest", "--port", str(free_port()), deadline_s=60)
    assert (
        f"topic {prefix}omicall.cdrs has 12 partitions, {prefix}omicall.call-events has 6: "
        "the join needs equal counts (registry: 6). Partitions cannot be removed: delete it "
        f"(kafka-topics.sh --bootstrap-server {kafka_bootstrap} --delete --topic "
        f"{prefix}omicall.cdrs; its records are lost)"
    ) in refusal


async def test_the_ingress_is_not_ready_and_accepts_nothing_while_it_cannot_create_its_topics(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="callstream.ingest.publisher")
    # No cluster has a hundred brokers: the broker refuses to create the topics.
    settings = ingress_settings(kafka_bootstrap, replication_factor=100)
    async with running_ingress(settings, ready=False) as ingress:
        await wait_until(lambda: "could not prepare topics" in caplog.messages, "the warning", 30)
        ready = await ingress.client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["detail"] == NOT_PREPARED
        posted = await ingress.client.post(
            ingress.url(), data=sample("event-ringing.json"), headers=JSON
        )
        assert posted.status == 503
        assert (await posted.json())["error"] == "kafka_unavailable"
        assert not await _topic_exists(kafka_bootstrap, ingress.topics["omicall.call-events"])


async def test_topics_found_wrong_after_start_keep_the_ingress_unready_until_fixed(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker was not there at start (the ingress started unready), then its topics were
    wrong, then an operator fixed them: ready only then."""
    monkeypatch.setattr(publisher_module, "RECONNECT_BACKOFF_S", 0.05)
    monkeypatch.setattr(publisher_module, "PREPARE_RETRY_S", 0.05)
    fixed = asyncio.Event()
    calls = 0

    async def prepare() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KafkaConnectionError("not up yet")
        if not fixed.is_set():
            raise TopicMismatch(["topic x has 3 partitions"])

    publisher = Publisher(kafka_bootstrap, send_timeout_s=2.0, linger_ms=0, prepare=prepare)
    await publisher.start()  # the first attempt failed: not ready, no error
    try:
        assert publisher.unready_reason == NOT_PREPARED
        await wait_until(lambda: calls >= 3, "a third attempt", 30)  # the second found them wrong
        assert publisher.unready_reason == MISMATCHED
        assert not publisher.ready(10.0)
        with pytest.raises(PublishUnavailable, match="not what callstream needs"):
            await publisher.publish("x", b"k", b"v", [])
        fixed.set()
        await wait_until(lambda: publisher.ready(10.0), "the publisher ready", 30)
    finally:
        await publisher.stop()
