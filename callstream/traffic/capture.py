"""Read topics' records into a capture file that `replay` posts again (docs/traffic.md).

A plain aiokafka consumer without a group (nothing committed) reads each partition from its
start (the beginning, or the first record at or after ``since``) up to its end as it was when
the capture began (or the first record at or after ``until``), and writes the records merged
into timestamp order across partitions and topics. The merge is a k-way merge of the
partitions' heads: a record is written once every partition still being read has one buffered,
so each partition's offset order is kept, and at most :data:`BUFFER_PER_PARTITION` records wait
per partition (its fetching pauses while it holds that many).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from callstream.kafka.admin import found_topics
from callstream.progress import Progress, silent
from callstream.traffic.recording import capture_line

BUFFER_PER_PARTITION = 500
POLL_MS = 500
STALL_S = 60.0  # no record and no partition finished for this long: the broker is gone
PROGRESS_INTERVAL_S = 5.0


class CaptureError(Exception):
    """The capture cannot go on: a missing topic, or the broker stopped answering."""


@dataclass(frozen=True, slots=True)
class Span:
    """A partition's records to read: offsets ``[start, end)``."""

    start: int
    end: int


async def _partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; CaptureError naming those that do not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await found_topics(admin, list(topics))
    finally:
        await admin.close()
    if missing := [topic for topic in topics if topic not in found]:
        raise CaptureError(f"no such topic on {bootstrap}: {', '.join(missing)}")
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


class _Merge:
    """The k-way merge of the partitions' buffered heads into the output."""

    def __init__(self, spans: dict[TopicPartition, Span], out: BinaryIO) -> None:
        self.spans = spans
        self.out = out
        self.buffers: dict[TopicPartition, deque[Any]] = {tp: deque() for tp in spans}
        self.read_all: set[TopicPartition] = set()
        self.written = 0

    def add(self, tp: TopicPartition, records: list[Any]) -> None:
        end = self.spans[tp].end
        self.buffers[tp].extend(record for record in records if record.offset < end)

    def write_ready(self) -> None:
        """Write heads while every partition still being read has one to compare."""
        while all(tp in self.read_all or self.buffers[tp] for tp in self.spans):
            heads = [tp for tp, buffer in self.buffers.items() if buffer]
            if not heads:
                return
            tp = min(heads, key=lambda tp: (self.buffers[tp][0].timestamp, tp.topic, tp.partition))
            self.out.write(capture_line(self.buffers[tp].popleft()))
            self.written += 1

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


async def capture(
    bootstrap: str,
    topics: Sequence[str],
    out: BinaryIO,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    progress: Progress = silent,
) -> int:
    """Write ``topics``' records (names on the cluster) in ``[since_ms, until_ms)`` (epoch ms of
    the records' timestamps; unset: from the beginning, up to the end offsets at the start) to
    ``out`` as capture lines; returns how many."""
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
        total = sum(span.end - span.start for span in spans.values())
        progress(f"capture: {total} records in {len(spans)} of {len(partitions)} partitions")
        if not spans:
            return 0
        consumer.assign(list(spans))
        for tp, span in spans.items():
            consumer.seek(tp, span.start)
        return await _read(consumer, _Merge(spans, out), total, progress)
    finally:
        await consumer.stop()


async def _read(consumer: AIOKafkaConsumer, merge: _Merge, total: int, progress: Progress) -> int:
    last_move = last_line = time.monotonic()
    while True:
        merge.write_ready()
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
            raise CaptureError(f"no record for {STALL_S:.0f} s: is the broker still there?")
        if now - last_line >= PROGRESS_INTERVAL_S:
            last_line = now
            progress(f"capture: {merge.written} of {total} records written")
