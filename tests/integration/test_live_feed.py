"""The live view's consumer on a real broker: every partition from the start, ready once it has
caught up with what was there, then following the topic; stopped when its task is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
from aiokafka import AIOKafkaProducer

from callstream.processors.live_feed import LiveFeed
from callstream.processors.live_view import LiveView
from callstream.processors.topic_feed import TopicFeed
from callstream.schemas.calls import LiveCall
from tests.conftest import TopicFactory

NOW = 1_760_000_000_000


def live(call_id: str, phase: str = "ringing") -> bytes:
    call = LiveCall(call_id=call_id, phase=phase, ringing_at_ms=NOW, updated_at_ms=NOW)  # type: ignore[arg-type]
    return msgspec.json.encode(call)


async def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        await asyncio.sleep(0.05)


def phases(feed: LiveFeed) -> dict[str, str]:
    return {call.call_id: call.phase for call in feed.view.calls()}


async def test_the_view_holds_every_partition_and_follows_the_topic(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=3, prefix="live", **{"cleanup.policy": "compact"})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # Before the feed starts: 30 calls over the three partitions, ten of which ended.
        for i in range(30):
            await producer.send_and_wait(topic, live(f"c{i}"), key=f"c{i}".encode())
        for i in range(10):
            await producer.send_and_wait(topic, None, key=f"c{i}".encode())
        await producer.send_and_wait(topic, b"not a live call", key=b"junk")
        feed = LiveFeed(kafka_bootstrap, topic)
        task = asyncio.create_task(feed.run())
        try:
            await wait_for(lambda: feed.ready, "the feed caught up")
            # Ready means caught up with the start: nothing of it is missing then.
            assert phases(feed) == {f"c{i}": "ringing" for i in range(10, 30)}
            await producer.send_and_wait(topic, live("c10", "answered"), key=b"c10")
            await producer.send_and_wait(topic, None, key=b"c11")
            await producer.send_and_wait(topic, live("new"), key=b"new")
            expected = {f"c{i}": "ringing" for i in range(12, 30)} | {
                "c10": "answered",
                "new": "ringing",
            }
            await wait_for(lambda: phases(feed) == expected, "the feed followed the topic")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert not feed.ready
    finally:
        await producer.stop()


async def test_an_empty_topic_is_ready_at_once(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=2, prefix="live")
    feed = LiveFeed(kafka_bootstrap, topic)
    task = asyncio.create_task(feed.run())
    try:
        await wait_for(lambda: feed.ready, "an empty view ready")
        assert feed.view.calls() == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_feed_since_a_time_reads_every_partition_from_that_time(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """The wallboard's metrics feed: the records written from ``since_ms`` on, on every
    partition (none on one: nothing read there), then the new ones."""
    topic = await new_topic(partitions=3, prefix="since")
    since = NOW - 60_000
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(12):  # old ones on every partition, new ones on partitions 0 and 1
            at, partition = (since - 1000, i % 3) if i < 6 else (since + i, i % 2)
            await producer.send_and_wait(
                topic, live(f"c{i}"), key=f"c{i}".encode(), partition=partition, timestamp_ms=at
            )
        feed = TopicFeed(kafka_bootstrap, topic, LiveView(), since_ms=lambda: since)
        task = asyncio.create_task(feed.run())
        try:
            await wait_for(lambda: feed.ready, "the feed caught up")
            assert {call.call_id for call in feed.view.calls()} == {f"c{i}" for i in range(6, 12)}
            await producer.send_and_wait(topic, live("new"), key=b"new")
            await wait_for(lambda: len(feed.view) == 7, "the feed followed the topic")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await producer.stop()
