"""Read topics' records between two moments, merged into timestamp order: what ``capture`` and
``export`` read with (docs/traffic.md, capture; README, SQL for analysts).

A plain aiokafka consumer without a group (nothing committed) reads each partition from its
start (the beginning, or the first record at or after ``since``) up to its end as it was when
the read began (or the first record at or after ``until``), and hands the records to a sink
merged into timestamp order across partitions and topics. The merge is a k-way merge of the
partitions' heads: a record is handed on once every partition still being read has one
buffered, so each partition's offset order is kept, and at most :data:`BUFFER_PER_PARTITION`
records wait per partition (its fetching pauses while it holds that many).
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from callstream.kafka.admin import found_topics

BUFFER_PER_PARTITION = 500
POLL_MS = 500
STALL_S = 60.0  # no record and no partition finished for this long: the broker is gone

Sink = Callable[[Any], None]  # takes one aiokafka ConsumerRecord


class ReadError(Exception):
    """The read cannot go on: a missing topic, or the broker stopped answering."""


class ReadProgress(Protocol):
    """How a read reports: the records it will read, then how many it has handed on."""

    def begin(self, total: int, partitions: int, of: int) -> None: ...
    def advance(self, done: int) -> None: ...


class NoProgress:
    """A ReadProgress that says nothing (the library default; the CLI passes a bar)."""

    def begin(self, total: int, partitions: int, of: int) -> None:
        pass

    def advance(self, done: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Span:
    """A partition's records to read: offsets ``[start, end)``."""

    start: int
    end: int


async def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; ReadError naming those that do not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await found_topics(admin, list(topics))
    finally:
        await admin.close()
    if missing := [topic for topic in topics if topic not in found]:
        raise ReadError(f"no such topic on {bootstrap}: {', '.join(missing)}")
    return [TopicPartition(t, p) for t in topics for p in range(found[t].partitions)]


async def _spans(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    since_ms: int | None,
    until_ms: int | None,
) -> dict[TopicPartition, Span]:
    """Each partition's offsets to read, empty ones left out."""
    ends_now: dict[TopicPartition, int] = await consumer.end_offsets(partitions)

    async def first_at(ms: int) -> dict[TopicPartition, int]:
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, ms))
        return {tp: ends_now[tp] if at is None else at.offset for tp, at in found.items()}

    if since_ms is None:
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
    else:
        starts = await first_at(since_ms)
    ends = ends_now if until_ms is None else await first_at(until_ms)
    spans = {tp: Span(starts[tp], min(ends[tp], ends_now[tp])) for tp in partitions}
    return {tp: span for tp, span in spans.items() if span.start < span.end}


class Merge:
    """The k-way merge of the partitions' buffered heads into the sink."""

    def __init__(self, spans: dict[TopicPartition, Span], sink: Sink) -> None:
        self.spans = spans
        self.sink = sink
        self.buffers: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in spans}
        self.read_all: set[TopicPartition] = set()
        self.written = 0

    def add(self, tp: TopicPartition, records: list[Any]) -> None:
        end = self.spans[tp].end
        self.buffers[tp].extend(record for record in records if record.offset < end)

    def write_ready(self) -> None:
        """Hand on heads while every partition still being read has one to compare: the
        earliest first (ties by topic, then partition), through a heap of the heads."""
        if any(tp not in self.read_all and not self.buffers[tp] for tp in self.spans):
            return
        heads = [
            (buffer[0].timestamp, tp.topic, tp.partition, tp)
            for tp, buffer in self.buffers.items()
            if buffer
        ]
        heapq.heapify(heads)
        while heads:
            tp = heapq.heappop(heads)[3]
            buffer = self.buffers[tp]
            self.sink(buffer.popleft())
            self.written += 1
            if buffer:
                heapq.heappush(heads, (buffer[0].timestamp, tp.topic, tp.partition, tp))
            elif tp not in self.read_all:
                return

    @property
    def finished(self) -> bool:
        return len(self.read_all) == len(self.spans) and not any(self.buffers.values())

    def full(self) -> set[TopicPartition]:
        """Partitions not to fetch from now: read to their end, or holding enough."""
        return {
            tp
            for tp, buffer in self.buffers.items()
            if tp in self.read_all or len(buffer) >= BUFFER_PER_PARTITION
        }


async def read_topics(
    bootstrap: str,
    topics: Sequence[str],
    sink: Sink,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    progress: ReadProgress | None = None,
) -> int:
    """Hand ``topics``' records (names on the cluster) in ``[since_ms, until_ms)`` (epoch ms of
    the records' timestamps; unset: from the beginning, up to the end offsets at the start) to
    ``sink`` in timestamp order; returns how many."""
    report = progress or NoProgress()
    partitions = await _partitions(bootstrap, topics)  # first: it fails without a broker
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)  # the client learns their leaders before the offset queries
        spans = await _spans(consumer, partitions, since_ms, until_ms)
        report.begin(
            sum(span.end - span.start for span in spans.values()), len(spans), len(partitions)
        )
        if not spans:
            return 0
        consumer.assign(list(spans))
        for tp, span in spans.items():
            consumer.seek(tp, span.start)
        return await _read(consumer, Merge(spans, sink), report)
    finally:
        await consumer.stop()


async def _read(consumer: AIOKafkaConsumer, merge: Merge, progress: ReadProgress) -> int:
    last_move = time.monotonic()
    while True:
        merge.write_ready()
        progress.advance(merge.written)
        if merge.finished:
            return merge.written
        full = merge.full()
        consumer.pause(*full)
        consumer.resume(*(tp for tp in merge.spans if tp not in full))
        batches = await consumer.getmany(timeout_ms=POLL_MS)
        moved = bool(batches)
        for tp, records in batches.items():
            merge.add(tp, records)
        for tp, span in merge.spans.items():
            if tp not in merge.read_all and await consumer.position(tp) >= span.end:
                merge.read_all.add(tp)
                moved = True
        now = time.monotonic()
        if moved or full == set(merge.spans):
            last_move = now
        elif now - last_move > STALL_S:
            raise ReadError(f"no record for {STALL_S:.0f} s: is the broker still there?")
