"""The tests' wait on a topic raises at its deadline, saying what was missing; it never
returns silently for the test to compare a state that was not reached."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import TopicFactory
from tests.kafka_support import read_topic, read_until


async def test_a_wait_that_is_not_satisfied_raises_at_its_deadline_with_what_is_missing(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"one")
    finally:
        await producer.stop()
    began = time.monotonic()
    with pytest.raises(AssertionError, match=rf"^{topic} after 1.0 s: 1 of 2 records$"):
        await read_topic(kafka_bootstrap, topic, expect=2, deadline_s=1.0)
    assert time.monotonic() - began < 5
    records = await read_until(
        kafka_bootstrap, topic, lambda records: None if records else "nothing", deadline_s=10
    )
    assert [record.value for record in records] == [b"one"]
