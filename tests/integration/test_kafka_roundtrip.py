"""The pinned broker with the pinned clients: keyed, idempotent, acks=all, order kept."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import TopicFactory

RECORDS = 1_000
KEYS = 37


async def test_thousand_keyed_records_come_back_in_order_per_partition(
    kafka_bootstrap: str, new_topic: TopicFactory, unique_group: str
) -> None:
    topic = await new_topic(partitions=3)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sends = [
            await producer.send(topic, key=f"call-{i % KEYS}".encode(), value=f"{i}".encode())
            for i in range(RECORDS)
        ]
        acked = await asyncio.wait_for(asyncio.gather(*sends), timeout=60)
    finally:
        await producer.stop()
    assert {metadata.partition for metadata in acked} == {0, 1, 2}

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: dict[int, list[tuple[bytes, int]]] = defaultdict(list)
    try:
        deadline = time.monotonic() + 60
        while sum(map(len, received.values())) < RECORDS and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition, messages in batch.items():
                received[partition.partition] += [
                    (message.key, int(message.value)) for message in messages
                ]
    finally:
        await consumer.stop()

    assert sum(map(len, received.values())) == RECORDS
    assert sorted(value for records in received.values() for _, value in records) == list(
        range(RECORDS)
    )
    partition_of_key: dict[bytes, int] = {}
    for partition, records in received.items():
        values = [value for _, value in records]
        assert values == sorted(values), f"partition {partition} is out of produce order"
        for key, _ in records:
            assert partition_of_key.setdefault(key, partition) == partition
    # The acks agree with what was read: the same offsets, in order, per partition.
    acked_by_partition: dict[int, list[int]] = defaultdict(list)
    for index, metadata in enumerate(acked):
        acked_by_partition[metadata.partition].append(index)
    assert {p: [v for _, v in r] for p, r in received.items()} == dict(acked_by_partition)
