"""Feeds a :class:`LiveView` from ``callstream.live-calls``: a thin shell around a plain aiokafka
consumer.

The consumer has no group: aiokafka assigns it every partition of the topic, read from the
earliest offset, so every worker holds the whole call centre's calls in progress. The view is
ready once the consumer has reached the end offsets it saw when it started (before that, it
would show calls that have long ended). A Kafka error starts the reading over, view emptied,
after a second; the view is not ready meanwhile.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from callstream.processors.live_view import LiveView

log = logging.getLogger("callstream.processors.live")
RETRY_S = 1.0
POLL_MS = 200


class LiveFeed:
    """The worker's view of the calls in progress; run :meth:`run` as a task while it serves."""

    def __init__(self, bootstrap_servers: str, topic: str, *, retry_s: float = RETRY_S) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.retry_s = retry_s
        self.view = LiveView()
        self._ready = False

    @property
    def ready(self) -> bool:
        """The view holds the topic as it was when the reading started, at least."""
        return self._ready

    async def run(self) -> None:
        """Read the topic into the view until cancelled."""
        while True:
            try:
                await self._read()
            except (KafkaError, OSError) as exc:
                self._ready = False
                log.warning("reading %s failed, starting over: %r", self.topic, exc)
                await asyncio.sleep(self.retry_s)

    async def _read(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,  # every partition, no group, nothing committed
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = consumer.assignment()
            if not partitions:
                raise KafkaError(f"no partitions of {self.topic} assigned")
            await consumer.seek_to_beginning(*partitions)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
            self.view.clear()
            self._ready = False
            while True:
                if not self._ready and await _reached(consumer, ends):
                    self._ready = True
                    log.info("live view of %s ready: %d calls", self.topic, len(self.view))
                batches = await consumer.getmany(timeout_ms=POLL_MS)
                for records in batches.values():
                    for record in records:
                        if not self.view.apply(record.key, record.value):
                            log.warning(
                                "%s: offset %d of partition %d is not a live call; dropped",
                                self.topic,
                                record.offset,
                                record.partition,
                            )
        finally:
            self._ready = False
            await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True
