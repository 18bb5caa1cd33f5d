"""Create the topics a service uses, with their partitions, cleanup policy and retention, and
check those that exist (callstream/kafka/topiccheck.py), so nothing relies on the broker's
auto-creation defaults or runs on topics that would split a call."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from callstream.kafka.probe import metadata
from callstream.kafka.replication import Replication
from callstream.kafka.topiccheck import FoundTopic, TopicMismatch, WantedTopic, topic_problems
from callstream.schemas.topics import TopicSpec

CLEANUP_POLICY = "cleanup.policy"
MIN_INSYNC = "min.insync.replicas"


def new_topic(want: WantedTopic, replication: Replication) -> NewTopic:
    """The creation request of ``want``. ``min.insync.replicas`` is set on replicated topics
    only: a single broker's topics keep the broker's default, as they always did."""
    configs = {CLEANUP_POLICY: want.cleanup_policy}
    if want.retention_ms is not None:
        configs["retention.ms"] = str(want.retention_ms)
    if replication.factor > 1:
        configs[MIN_INSYNC] = str(replication.min_insync)
    return NewTopic(
        want.name,
        num_partitions=want.partitions,
        replication_factor=replication.factor,
        topic_configs=configs,
    )


async def replication_for(admin: AIOKafkaAdminClient, factor: int | None) -> Replication:
    """``factor`` copies (CALLSTREAM_REPLICATION_FACTOR), or when None as many as the cluster
    has brokers, three at most: 1 on the single local broker, 3 on the local cluster. aiokafka's
    NewTopic cannot ask for the cluster's own default (-1), so the count is asked instead."""
    if factor is not None:
        return Replication.of_factor(factor)
    described = await admin.describe_cluster()
    return Replication.for_brokers(len(described["brokers"]))


async def ensure_topics(
    bootstrap_servers: str,
    specs: Iterable[TopicSpec],
    prefix: str = "",
    replication_factor: int | None = None,
) -> list[str]:
    """Create those of ``specs`` (named with ``prefix``) that do not exist; returns their names.
    ``replication_factor`` None: see :func:`replication_for`."""
    admin = await _admin(bootstrap_servers)
    try:
        replication = await replication_for(admin, replication_factor)
        topics = [
            new_topic(WantedTopic.from_spec(spec, prefix, joined=False), replication)
            for spec in specs
        ]
        return await _create_missing(admin, topics)
    finally:
        await admin.close()


@dataclass(frozen=True)
class PreparedTopics:
    """What :func:`prepare_topics` did: the topics it created, with how many copies."""

    created: list[str]
    replication: Replication


async def prepare_topics(
    bootstrap_servers: str, wanted: Sequence[WantedTopic], replication_factor: int | None
) -> PreparedTopics:
    """Create those of ``wanted`` that do not exist, then check them all. Raises TopicMismatch,
    naming each problem and its fix, when one is wrong. ``replication_factor`` None: see
    :func:`replication_for`."""
    admin = await _admin(bootstrap_servers)
    try:
        replication = await replication_for(admin, replication_factor)
        created = await _create_missing(admin, [new_topic(want, replication) for want in wanted])
        found = await found_topics(admin, [want.name for want in wanted])
    finally:
        await admin.close()
    problems = topic_problems(wanted, found, bootstrap_servers)
    if problems:
        raise TopicMismatch(problems)
    return PreparedTopics(created, replication)


async def found_topics(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, FoundTopic]:
    """Partition count and cleanup policy of those of ``names`` that exist, by name."""
    partitions = {
        described["topic"]: len(described["partitions"])
        for described in await admin.describe_topics(names)
        if described["error_code"] == 0
    }
    if not partitions:
        return {}
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs={CLEANUP_POLICY: None})
        for name in partitions
    ]
    policies: dict[str, str] = {}
    for response in await admin.describe_configs(resources):
        for error_code, _message, _type, name, entries in response.resources:
            if error_code:
                raise for_code(error_code)(f"describing the configs of topic {name}")
            for config_name, value, *_ in entries:
                if config_name == CLEANUP_POLICY:
                    policies[name] = value
    return {
        name: FoundTopic(name, count, policies.get(name, "delete"))
        for name, count in partitions.items()
    }


async def _admin(bootstrap_servers: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    return admin


async def _create_missing(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> list[str]:
    """Create those of ``topics`` that do not exist and wait until they are visible; returns
    their names. Another process creating one at the same moment is no error."""
    existing = set(await admin.list_topics())
    missing = [topic for topic in topics if topic.name not in existing]
    if missing:
        response = await admin.create_topics(missing)
        refused = creation_refusals(response.topic_errors)
        if refused:
            raise TopicCreationRefused(refused)
        await _wait_visible(admin, {topic.name: topic.num_partitions for topic in missing})
    return [topic.name for topic in missing]


class TopicCreationRefused(KafkaError):  # type: ignore[misc]  # aiokafka is untyped
    """The broker refused to create topics, for the reasons given. A KafkaError, so the
    services retry as for a broker not reachable (too many copies for the brokers registered
    so far passes once they are), and their log names the topics and the reasons at once."""

    def __init__(self, refusals: Sequence[str]) -> None:
        self.refusals = list(refusals)
        super().__init__("; ".join(self.refusals))


def creation_refusals(topic_errors: Iterable[Sequence[Any]]) -> list[str]:
    """The broker's refusals in a CreateTopics response (``(topic, error code[, message])``
    each; aiokafka raises none of them), as problems to name: an invalid name, a replication
    factor above the brokers, a policy. One that exists already is no error: another process
    created it at the same moment."""
    refused = []
    for name, code, *message in topic_errors:
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code)
        detail = f": {message[0]}" if message and message[0] else ""
        refused.append(f"topic {name!r} cannot be created ({error.__name__}{detail})")
    return refused


async def _wait_visible(
    admin: AIOKafkaAdminClient, partitions: dict[str, int], deadline_s: float = 15.0
) -> None:
    """Creation returns before every broker's metadata shows the topics; wait until each
    broker's does. Each, not one: aiokafka's admin asks a random broker, and on a cluster one
    that has not heard of a new topic yet answers that it does not exist (for some 100 ms)."""
    brokers = [(b["host"], b["port"]) for b in (await admin.describe_cluster())["brokers"]]
    names = list(partitions)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while True:
        lacking = [
            f"{host}:{port}"
            for host, port in brokers
            if not await asyncio.to_thread(_shows, host, port, names, partitions)
        ]
        if not lacking:
            return
        if loop.time() > deadline:
            raise TimeoutError(
                f"topics not visible on {', '.join(lacking)} after {deadline_s:g} s: "
                f"{sorted(partitions)}"
            )
        await asyncio.sleep(0.1)


def _shows(host: str, port: int, names: list[str], partitions: dict[str, int]) -> bool:
    """The broker at ``host:port`` knows every one of ``names`` with its partition count."""
    try:
        return metadata(host, port, names).topics == partitions
    except (OSError, ValueError, struct.error):
        return False
