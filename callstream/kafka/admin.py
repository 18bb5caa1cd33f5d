"""Create the registry's topics on a cluster, with their partitions, cleanup policy and
retention, so nothing relies on the broker's auto-creation defaults."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from callstream.schemas.topics import TopicSpec

# aiokafka's NewTopic cannot ask for the cluster's default (-1), so callers say it; 1 suits the
# single local broker, a production cluster wants 3 (CALLSTREAM_REPLICATION_FACTOR).
DEFAULT_REPLICATION = 1


def topic_config(spec: TopicSpec) -> dict[str, str]:
    """The Kafka topic configs of ``spec``."""
    return {"cleanup.policy": spec.cleanup_policy, "retention.ms": str(spec.retention_ms)}


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    prefix: str = "",
    replication_factor: int = DEFAULT_REPLICATION,
) -> list[str]:
    """Create those of ``specs`` (named with ``prefix``) that do not exist; returns their names."""
    topics = [
        NewTopic(
            spec.full_name(prefix),
            num_partitions=spec.partitions,
            replication_factor=replication_factor,
            topic_configs=topic_config(spec),
        )
        for spec in specs
    ]
    return await create_missing(bootstrap_servers, topics)


async def create_missing(bootstrap_servers: str, topics: list[NewTopic]) -> list[str]:
    """Create those of ``topics`` that do not exist and wait until they are visible; returns
    their names. Another process creating one at the same moment is no error."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            await _wait_visible(admin, {topic.name: topic.num_partitions for topic in missing})
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def _wait_visible(
    admin: AIOKafkaAdminClient, partitions: dict[str, int], deadline_s: float = 15.0
) -> None:
    """Creation returns before every broker's metadata shows the topics; wait until it does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        described = await admin.describe_topics(list(partitions))
        if all(len(d["partitions"]) == partitions[d["topic"]] for d in described):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics not visible after {deadline_s:g} s: {sorted(partitions)}")
        await asyncio.sleep(0.1)
