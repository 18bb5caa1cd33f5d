"""`callstream kafka start --nodes 3` as a user runs it: a cluster whose topics keep three
copies and acknowledge on two, and that keeps taking acks=all writes when a partition's leader
is SIGKILLed. The session's ``kafka_cluster`` fixture starts it (and stops it at the end, checking
that every node is gone); this test brings the killed node back before it ends."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from callstream.ingest.app import INGRESS_TOPICS
from callstream.kafka.admin import ensure_topics, prepare_topics
from callstream.kafka.replication import Replication
from callstream.kafka.topiccheck import registry_topics
from callstream.schemas.topics import CALL_EVENTS, topic
from tests.cluster_support import NODES, LocalCluster, topic_partitions
from tests.kafka_support import read_topic, wait_while_lacking

SEND_DEADLINE_S = 30.0


async def _partition_zero(admin: AIOKafkaAdminClient, name: str) -> dict[str, Any] | str:
    """Partition 0 as the cluster describes it, or why it could not be asked: aiokafka's admin
    asks a random broker, the killed one too until its metadata drops it."""
    try:
        return (await topic_partitions(admin, name))[0]
    except KafkaError as error:
        return f"describing {name} failed: {error!r}"


async def _min_insync(admin: AIOKafkaAdminClient, name: str) -> str:
    resource = ConfigResource(ConfigResourceType.TOPIC, name, configs={"min.insync.replicas": None})
    (response,) = await admin.describe_configs([resource])
    return {entry[0]: entry[1] for entry in response.resources[0][4]}["min.insync.replicas"]


def _status_lines(kafka_cluster: LocalCluster) -> tuple[int, list[str]]:
    code, out, _err = kafka_cluster.kafka("status")
    return code, out.splitlines()


async def test_a_three_node_cluster_replicates_and_survives_a_leader_kill(
    kafka_cluster: LocalCluster,
) -> None:
    began = time.monotonic()
    bootstrap = kafka_cluster.bootstrap
    assert bootstrap == ",".join(f"127.0.0.1:{kafka_cluster.base_port + i}" for i in range(NODES))

    code, lines = _status_lines(kafka_cluster)
    assert code == 0, lines
    assert lines[0].startswith(f"cluster running at {bootstrap} (3 of 3 nodes running, ")
    assert "quorum leader node " in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["  node 1", "  node 2", "  node 3"]
    assert all(": running at 127.0.0.1:" in line for line in lines[1:])

    # The project's own topic creation, with the setting unset: three copies, two to ack.
    prefix = f"cl{uuid.uuid4().hex[:8]}."
    spec = topic(CALL_EVENTS)
    name = spec.full_name(prefix)
    assert await ensure_topics(bootstrap, [spec], prefix) == [name]
    # Created, then checked at once as the services do: every broker must know them by then
    # (aiokafka's admin asks a random one).
    ingress_topics = registry_topics(INGRESS_TOPICS, f"{prefix}in.")
    prepared = await prepare_topics(bootstrap, ingress_topics, replication_factor=None)
    assert prepared.replication == Replication(3, 2)
    assert sorted(prepared.created) == sorted(want.name for want in ingress_topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        partitions = await topic_partitions(admin, name)
        assert len(partitions) == spec.partitions
        assert all(sorted(p["replicas"]) == [1, 2, 3] for p in partitions), partitions
        assert await _min_insync(admin, name) == "2"

        async def send(value: bytes) -> None:
            sent = producer.send_and_wait(name, value, key=b"call", partition=0)
            await asyncio.wait_for(sent, SEND_DEADLINE_S)

        await send(b"before the kill")
        records = await read_topic(bootstrap, name, expect=1)
        assert [record.value for record in records] == [b"before the kill"]

        # SIGKILL the leader of partition 0: the controller fences it after the broker session
        # timeout (3 s) and a replica in sync takes over; acks=all still has two in sync.
        killed = partitions[0]["leader"]
        os.kill(kafka_cluster.node_pid(killed), signal.SIGKILL)

        async def leader_unmoved() -> str | None:
            partition = await _partition_zero(admin, name)
            if isinstance(partition, str):
                return partition
            leader = partition["leader"]
            return None if leader not in {killed, -1} else f"partition 0's leader is {leader}"

        await wait_while_lacking(leader_unmoved, "a new leader of partition 0", deadline_s=30)
        await send(b"after the kill")

        code, lines = _status_lines(kafka_cluster)
        assert code == 1, lines
        assert lines[0].startswith(f"cluster degraded at {bootstrap} (2 of 3 nodes running, ")
        assert lines[killed].startswith(f"  node {killed}: not running")

        # `start` again starts only the node that is down; it rejoins and catches up.
        assert kafka_cluster.start() == bootstrap

        async def isr_short() -> str | None:
            partition = await _partition_zero(admin, name)
            if isinstance(partition, str):
                return partition
            isr = partition["isr"]
            return None if len(isr) == NODES else f"partition 0's in-sync replicas are {isr}"

        await wait_while_lacking(isr_short, "node back in sync", deadline_s=60)
    finally:
        await producer.stop()
        await admin.close()

    records = await read_topic(bootstrap, name, expect=2)
    assert [record.value for record in records] == [b"before the kill", b"after the kill"]
    assert _status_lines(kafka_cluster)[0] == 0
    assert time.monotonic() - began < 90
