"""The ingress and the worker pick a key's partition themselves (cached); it must be the one
Kafka's default partitioner picks, which the co-partitioned topics and faust's own sends rely on."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from callstream.kafka.partitioning import partition_for_key


@given(st.binary(min_size=0, max_size=64), st.integers(1, 64))
def test_the_partition_is_the_default_partitioners(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert partition_for_key(key, partitions) == expected
