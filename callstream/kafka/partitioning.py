"""The partition Kafka's default partitioner gives a key, computed here and cached.

The ingress and the worker pass it to their sends themselves: a call's records share a key, and
aiokafka's murmur2 is pure Python. It must equal what every other client picks, because the
worker's topics are co-partitioned by call id (tests/unit/test_kafka_partitioning.py).
"""

from __future__ import annotations

import functools

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key`` among ``partitions`` (what every client picks)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


# Cached for the hot paths, which see a call's key several times; a scan of every key uses
# murmur2_partition, so as not to push those out.
partition_for_key = functools.lru_cache(maxsize=4096)(murmur2_partition)


def default_partition(producer: AIOKafkaProducer, topic: str, key: bytes | None) -> int | None:
    """``key``'s partition of ``topic`` from the producer's metadata; ``None`` lets aiokafka
    choose (no key, or no metadata for the topic yet)."""
    partitions = producer.client.cluster.partitions_for_topic(topic)
    if key is None or not partitions:
        return None
    return partition_for_key(key, len(partitions))
