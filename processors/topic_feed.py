"""Feeds an in-memory view from a whole topic: a thin shell around a plain aiokafka consumer.

The consumer has no group: aiokafka assigns it every partition of the topic, so every worker
holds the view of the whole call centre whatever partitions it owns. It reads from the earliest
offset, or from the first record at or after a time (``since_ms``: a view that needs only the
recent records). The view is ready once the consumer has reached the end offsets it saw when it
started (before that, it would show what has long changed). A Kafka error starts the reading
over, view emptied, after a second; the view is not ready meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

log = logging.getLogger("callstream.processors.feed")
RETRY_S = 1.0
POLL_MS = 200


class FeedView(Protocol):
    """What a feed fills: records in, a size for the log."""

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record; False for one the view cannot read (logged and dropped)."""
        ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...


V = TypeVar("V", bound=FeedView)


def ignore_change() -> None:
    return None


class TopicFeed(Generic[V]):
    """A view of a whole topic; run :meth:`run` as a task while it serves. ``on_change`` is
    called after every batch of records applied, and when the view becomes ready or not."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        view: V,
        *,
        since_ms: Callable[[], int] | None = None,
        on_change: Callable[[], None] = ignore_change,
        retry_s: float = RETRY_S,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.view = view
        self.since_ms = since_ms
        self.on_change = on_change
        self.retry_s = retry_s
        self._ready = False

    @property
    def ready(self) -> bool:
        """The view holds the topic as it was when the reading started, at least."""
        return self._ready

    def _set_ready(self, ready: bool) -> None:
        if ready != self._ready:
            self._ready = ready
            self.on_change()

    async def run(self) -> None:
        """Read the topic into the view until cancelled."""
        while True:
            try:
                await self._read()
            except (KafkaError, OSError) as exc:
                self._set_ready(False)
                log.warning("reading %s failed, starting over: %r", self.topic, exc)
                await asyncio.sleep(self.retry_s)

    async def _seek(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """To the earliest record, or to the first at or after ``since_ms`` (none: the end)."""
        if self.since_ms is None:
            await consumer.seek_to_beginning(*partitions)
            return
        since = self.since_ms()
        # The ends first: where no record was at or after ``since`` when asked, none came
        # after these ends either; taken after, they could pass a record written in between.
        ends = await consumer.end_offsets(list(partitions))
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
        for partition in partitions:
            at = found.get(partition)
            consumer.seek(partition, ends[partition] if at is None else at.offset)

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
            await self._seek(consumer, partitions)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
            self.view.clear()
            self._set_ready(False)
            while True:
                if not self._ready and await _reached(consumer, ends):
                    log.info("view of %s ready: %d entries", self.topic, len(self.view))
                    self._set_ready(True)
                batches = await consumer.getmany(timeout_ms=POLL_MS)
                for records in batches.values():
                    for record in records:
                        if not self.view.apply(record.key, record.value):
                            log.warning(
                                "%s: offset %d of partition %d does not read; dropped",
                                self.topic,
                                record.offset,
                                record.partition,
                            )
                if batches:
                    self.on_change()
        finally:
            self._set_ready(False)
            await consumer.stop()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True
