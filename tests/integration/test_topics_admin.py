"""Topics are created with the registry's settings, once."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from callstream.kafka.admin import TopicCreationRefused, ensure_topics
from callstream.schemas.topics import TOPICS, topic
from tests.integration.ingress_support import ingress_settings, running_ingress


async def _describe(bootstrap: str, name: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        configs = {entry[0]: entry[1] for entry in response.resources[0][4]}
        return len(described["partitions"]), configs
    finally:
        await admin.close()


async def test_ensure_topics_creates_what_is_missing_with_the_registry_settings(
    kafka_bootstrap: str,
) -> None:
    prefix = f"adm{uuid.uuid4().hex[:8]}."
    created = await ensure_topics(kafka_bootstrap, TOPICS, prefix)
    assert sorted(created) == sorted(spec.full_name(prefix) for spec in TOPICS)
    assert await ensure_topics(kafka_bootstrap, TOPICS, prefix) == []
    for spec in TOPICS:
        partitions, configs = await _describe(kafka_bootstrap, spec.full_name(prefix))
        assert partitions == spec.partitions, spec.name
        assert configs["cleanup.policy"] == spec.cleanup_policy, spec.name
        assert configs["retention.ms"] == str(spec.retention_ms), spec.name


async def test_the_ingress_creates_its_topics_before_it_is_ready(kafka_bootstrap: str) -> None:
    settings = ingress_settings(kafka_bootstrap)
    async with running_ingress(settings) as ingress:
        for name in ("omicall.call-events", "omicall.cdrs", "omicall.rejected"):
            partitions, _ = await _describe(kafka_bootstrap, ingress.topics[name])
            assert partitions == topic(name).partitions


async def test_a_topic_the_broker_refuses_to_create_is_named_at_once(kafka_bootstrap: str) -> None:
    """A prefix with a character Kafka refuses in topic names (the app id of a worker, say)
    fails with the broker's reason, not a wait for topics that will never appear."""
    prefix = f"adm+{uuid.uuid4().hex[:8]}."
    began = time.monotonic()
    with pytest.raises(TopicCreationRefused) as refused:
        await ensure_topics(kafka_bootstrap, TOPICS[:1], prefix)
    assert time.monotonic() - began < 5
    name = TOPICS[0].full_name(prefix)
    assert f"topic {name!r} cannot be created (InvalidTopicError" in str(refused.value)
