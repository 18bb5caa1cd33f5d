"""The worker's outputs, many input records' worth at a time: one Kafka batch per topic partition.

aiokafka's ``send`` costs tens of microseconds of Python per record (a future, the partitioner,
the accumulator), more than the fold itself; appending to a ``BatchBuilder`` costs a few. So the
agents append every record they produce here, and a flush, 100 ms after the first record (or
sooner when it or one partition's batch is large), hands each partition's batch to the producer
at once. Large flushes are what make the metrics affordable: a share or window that many calls
change within one flush is written and sent once.

An input record is acknowledged only once Kafka has acknowledged every batch of the flush that
holds its outputs (acks=all): until then faust commits no offset at or past it, and a worker
that dies first has the record processed again. A batch Kafka refuses ends the process
(``EXIT_SEND_FAILED``) for the same reason; see processors/sink.py.

A record's outputs must reach Kafka before its changelog records: a worker killed after its
changelog record but before its outputs would recover a table that already holds the change,
so the record processed again would publish nothing (an output lost). So a flush hands over
its output batches first, and the tables' changelog batches (``state_topics``) only once every
output is delivered. Killed in between, the record is processed again and publishes the same
outputs again: the same (call id, revision) on ``calls-completed``, the same value under the
same key on the compacted topics, the same window figures (docs/architecture.md, The worker's
guarantee). The one exception, ``after_state_topics`` (the metric shares' updates), goes last,
once the changelog is delivered too: what it carries must be what the tables hold, and the
worker sends it all again once it has recovered them. This does not rest on how the producer
groups batches into requests, so it holds on a cluster, where a request goes to each partition
leader. A flush holds whole
input records only (size limits are checked between them), its batches are closed (the
producer lets none of them linger on its own), and it hands them over only once the flush
before it is delivered, so that a partition's records reach Kafka in the order they were added.
A partition's bytes in a flush stay under a batch's size, so that one partition's changelog
records of a flush are one batch, which Kafka writes whole or not at all.

What only a key's last value matters of, and that many input records change within one flush
(a metric window that hundreds of calls changed in 100 ms), need not be sent once per change: a
sink may hold it back and append it from a hook that every flush runs first (``before_flush``,
``append``), so the flush sends it once, with the input records that changed it. Such a sink
``reserve``s the bytes it will append, by partition, so that the flush and each of its
partitions stay under their sizes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata, TopicPartition

from callstream.kafka.partitioning import partition_for_key

log = logging.getLogger("callstream.processors")

EXIT_SEND_FAILED = 70  # EX_SOFTWARE: Kafka refused a record; a restart redelivers its input
# Measured with bench/processors.py (README, Performance): with the metrics, 100 ms and 4 MB gave
# 5.2k-6.0k events/s, 20 ms and 640 KB 3.6k-4.6k (flushes of about 110 records, shares and
# windows written and sent at nearly every change).
LINGER_S = 0.1
MAX_EVENTS = 2000  # input records per flush: bounds what a failure makes the worker redo
# A flush's bytes: aiokafka sends every partition's batch of a flush in one request to the
# broker, capped only by the broker (socket.request.max.bytes, 100 MB by default).
MAX_FLUSH_BYTES = 4 * 1024 * 1024
# One partition's bytes in a flush: with one more input record's worth, under a batch's size
# (1 MB, the broker's default message.max.bytes), so that a partition's records take one batch.
# The most one record adds to a partition: a record of share updates, 100 windows of up to
# about 4.5 KB each (a call state is under the ingress's 64 KB body limit).
MAX_PARTITION_BYTES = 512 * 1024
RECORD_OVERHEAD_BYTES = 64  # a record's framing in a batch, at most (varints, headers count)
# An idempotent producer never expires a batch (aiokafka retries it for ever): a flush Kafka has
# not acknowledged by then ends the process like a refused one, and its inputs are processed
# again after a restart. Leader elections take seconds; a broker gone longer is an outage.
DELIVERY_DEADLINE_S = 120.0

# Called with a batch's topic partition and the offset of its last record once Kafka has it.
Delivered = Callable[[TopicPartition, int], None]
# Told the seconds from a flush's start until its input records are acknowledged.
ObserveFlush = Callable[[float], None]
# Run at the start of every flush, before it takes its batches: appends what it held back.
BeforeFlush = Callable[["OutputBatches"], None]


class RecordTooLarge(Exception):
    """A record larger than a whole batch (the producer's max batch size)."""


def _exit_on_failure(what: str, error: BaseException) -> None:
    log.critical(
        "Kafka refused %s: %r; exiting so that its inputs are processed again", what, error
    )
    logging.shutdown()
    os._exit(EXIT_SEND_FAILED)


def _overdue(flush: _Flush, deadline_s: float) -> None:
    if not flush.acked:
        _exit_on_failure("a flush", TimeoutError(f"no acknowledgement within {deadline_s:g} s"))


class _Flush:
    """Acknowledges a flush's input records once Kafka acknowledged all of its batches and the
    flush before it is acknowledged: a record whose outputs filled a batch has some of them in
    the flush before the one that acknowledges it."""

    __slots__ = ("acked", "deadline", "events", "next", "observe", "remaining", "started")

    def __init__(
        self,
        events: list[Any],
        batches: int,
        previous: _Flush | None,
        observe: ObserveFlush | None = None,
    ) -> None:
        self.events = events
        self.started = time.monotonic()
        self.observe = observe
        self.acked = False
        self.deadline: asyncio.TimerHandle | None = None  # cancelled once acknowledged
        self.next: _Flush | None = None
        self.remaining = batches
        if previous is not None and not previous.acked:
            previous.next = self
            self.remaining += 1

    def delivered(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.acked = True
            if self.deadline is not None:
                self.deadline.cancel()
            for event in self.events:
                event.ack()
            if self.observe is not None:
                self.observe(time.monotonic() - self.started)
            if self.next is not None:
                self.next.delivered()


class OutputBatches:
    """Records appended per topic partition, sent together; input records acked after."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        linger_s: float = LINGER_S,
        observe_flush: ObserveFlush | None = None,
        state_topics: AbstractSet[str] = frozenset(),
        *,
        delivery_deadline_s: float = DELIVERY_DEADLINE_S,
        after_state_topics: AbstractSet[str] = frozenset(),
    ) -> None:
        """``observe_flush`` is told how long each flush that handed batches over took, from
        its start until Kafka acknowledged them all (and the flush before it).
        ``state_topics``: the tables' changelogs, sent once the flush's outputs are delivered;
        ``after_state_topics``: sent once the changelogs are delivered too. A flush not
        acknowledged within ``delivery_deadline_s`` ends the process (``EXIT_SEND_FAILED``)."""
        self.producer = producer
        self._state_topics = state_topics
        self._after_state_topics = after_state_topics
        self.linger_s = linger_s
        self.delivery_deadline_s = delivery_deadline_s
        self.observe_flush = observe_flush
        self._batches: dict[TopicPartition, Any] = {}  # aiokafka BatchBuilder per partition
        self._full: list[tuple[TopicPartition, Any]] = []  # filled by append(), in order
        self._on_delivered: dict[TopicPartition, Delivered] = {}
        self._events: list[Any] = []
        self._bytes = 0
        self._partition_bytes: dict[TopicPartition, int] = {}
        self._fullest = 0  # the largest of _partition_bytes
        self._last_flush: _Flush | None = None
        self._in_flight: list[asyncio.Future[RecordMetadata]] = []  # the last flush's batches
        self._timer: asyncio.TimerHandle | None = None
        self._partitions: dict[str, int] = {}
        self._tps: dict[tuple[str, int], TopicPartition] = {}  # made once: a few dozen in all
        self._tasks: set[asyncio.Task[None]] = set()
        # Flushes hand their batches over in the order they took them, so that a partition's
        # records reach Kafka in the order they were added (a compacted topic keeps the last).
        self._handing_over = asyncio.Lock()
        self._before_flush: list[BeforeFlush] = []

    async def partition(self, topic: str, key: bytes) -> int:
        """``key``'s partition of ``topic``, as Kafka's default partitioner picks it."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return partition_for_key(key, count)

    async def add(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        on_delivered: Delivered | None = None,
    ) -> None:
        """Append one record; ``on_delivered`` is told the offset of its batch's last record."""
        tp = self._topic_partition(topic, partition)
        if not self._appended(tp, key, value):
            # Full: not expected, a flush's bytes stay under a batch's size; correct, but the
            # input record's outputs then take two flushes. The other agent may have opened
            # this partition's next batch meanwhile.
            await self.flush()
            self._append_to_new(tp, key, value)
        self._count(tp, len(key) + len(value or b"") + RECORD_OVERHEAD_BYTES)
        if on_delivered is not None:
            self._on_delivered[tp] = on_delivered
        self._start_linger()

    def before_flush(self, hook: BeforeFlush) -> None:
        """Run ``hook`` at the start of every flush: what it appends goes out in that flush,
        with the input records done before it (and any done since the hook's data changed)."""
        self._before_flush.append(hook)

    def reserve(self, topic: str, partition: int, size: int) -> None:
        """Count ``size`` bytes that a before-flush hook will append to ``topic``'s
        ``partition`` towards the flush's bounds, the partition's too (a flush comes between
        input records once one is reached), and flush in time."""
        self._count(self._topic_partition(topic, partition), size)
        self._start_linger()

    def _topic_partition(self, topic: str, partition: int) -> TopicPartition:
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[(topic, partition)] = TopicPartition(topic, partition)
        return tp

    def _count(self, tp: TopicPartition, size: int) -> None:
        self._bytes += size
        filled = self._partition_bytes[tp] = self._partition_bytes.get(tp, 0) + size
        self._fullest = max(self._fullest, filled)

    def append(
        self,
        topic: str,
        partition: int,
        key: bytes,
        value: bytes | None,
        on_delivered: Delivered | None = None,
    ) -> None:
        """:meth:`add` for a before-flush hook, which cannot wait: a full batch is set aside
        for this flush and a new one opened."""
        tp = self._topic_partition(topic, partition)
        if not self._appended(tp, key, value):
            self._full.append((tp, self._batches.pop(tp)))
            self._append_to_new(tp, key, value)
        if on_delivered is not None:
            self._on_delivered[tp] = on_delivered

    def _appended(self, tp: TopicPartition, key: bytes, value: bytes | None) -> bool:
        """Whether the record fits in the partition's open batch (it is then in it)."""
        return self._open_batch(tp).append(timestamp=None, key=key, value=value) is not None

    def _append_to_new(self, tp: TopicPartition, key: bytes, value: bytes | None) -> None:
        """Append to the partition's batch just opened, after a full one went to a flush."""
        if not self._appended(tp, key, value):
            raise RecordTooLarge(f"a record of {len(value or b'')} bytes fills no batch")

    def _open_batch(self, tp: TopicPartition) -> Any:
        """The partition's batch being filled (an aiokafka BatchBuilder), new if none is."""
        batch = self._batches.get(tp)
        if batch is None:
            batch = self._batches[tp] = self.producer.create_batch()
        return batch

    def _start_linger(self) -> None:
        """Flush in ``linger_s`` unless a flush is already due."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger_s, self._flush_soon)

    async def done(self, event: Any) -> None:
        """``event``'s records are all added: ack it once they are delivered."""
        self._events.append(event)
        if (
            len(self._events) >= MAX_EVENTS
            or self._bytes >= MAX_FLUSH_BYTES
            or self._fullest >= MAX_PARTITION_BYTES
        ):
            await self.flush()
        else:
            self._start_linger()  # a record that produced nothing is acked by a flush too

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._tasks.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Hand every open batch to the producer; ack their input records once all delivered.

        Any failure ends the process (``EXIT_SEND_FAILED``): a flush that did not hand over all
        of its batches would hold up every later acknowledgement, and ordering after it.
        """
        try:
            await self._flush()
        except asyncio.CancelledError:  # the loop is closing: the records stay unacked
            raise
        except BaseException as error:
            _exit_on_failure("a flush", error)

    async def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for hook in self._before_flush:
            hook(self)
        # A partition's batches in order; only its last tells the changelog (all of them hold
        # the changes it applies).
        batches: list[tuple[TopicPartition, Any, Delivered | None]]
        batches = [(tp, batch, None) for tp, batch in self._full]
        batches += [(tp, batch, self._on_delivered.get(tp)) for tp, batch in self._batches.items()]
        self._batches, self._full, self._on_delivered = {}, [], {}
        events, self._events = self._events, []
        self._bytes, self._partition_bytes, self._fullest = 0, {}, 0
        if not batches:
            flush = _Flush(events, 1, self._last_flush)
            flush.delivered()  # they produced nothing: acked once the flush before is
            self._last_flush = flush
            return
        flush = _Flush(events, len(batches), self._last_flush, self.observe_flush)
        flush.deadline = asyncio.get_running_loop().call_later(
            self.delivery_deadline_s, _overdue, flush, self.delivery_deadline_s
        )
        self._last_flush = flush
        stages: tuple[list[tuple[TopicPartition, Any, Delivered | None]], ...] = ([], [], [])
        for sent in batches:
            topic = sent[0].topic
            stage = (
                1 if topic in self._state_topics else 2 if topic in self._after_state_topics else 0
            )
            stages[stage].append(sent)
        async with self._handing_over:
            if self._in_flight:  # delivered, so drained: no send_batch below waits for a slot
                await asyncio.wait(self._in_flight)
            in_flight: list[asyncio.Future[RecordMetadata]] = []
            for stage_batches in stages:  # outputs, then changelogs, then what follows them
                if stage_batches and in_flight:
                    await asyncio.wait(in_flight)
                    if any(sent.cancelled() or sent.exception() for sent in in_flight):
                        return  # its delivery callback ends the process; the rest stay unsent
                in_flight += await self._hand_over(flush, stage_batches)
            self._in_flight = in_flight

    async def _hand_over(
        self, flush: _Flush, batches: list[tuple[TopicPartition, Any, Delivered | None]]
    ) -> list[asyncio.Future[RecordMetadata]]:
        in_flight = []
        for tp, batch, on_delivered in batches:
            count = batch.record_count()
            batch.close()
            sent = await self.producer.send_batch(batch, tp.topic, partition=tp.partition)
            sent.add_done_callback(self._delivery(flush, on_delivered, count))
            in_flight.append(sent)
        return in_flight

    @staticmethod
    def _delivery(
        flush: _Flush, on_delivered: Delivered | None, count: int
    ) -> Callable[[asyncio.Future[RecordMetadata]], None]:
        def delivered(sent: asyncio.Future[RecordMetadata]) -> None:
            if sent.cancelled():  # the producer stopped under it: its inputs stay unacked
                log.warning("a batch was cancelled; its input records stay unacknowledged")
                return
            error = sent.exception()
            if error is not None:
                _exit_on_failure("a batch", error)
            try:
                if on_delivered is not None:
                    metadata = sent.result()
                    on_delivered(metadata.topic_partition, metadata.offset + count - 1)
                flush.delivered()
            except BaseException as failure:  # a callback's error would only be logged
                _exit_on_failure("a delivery callback", failure)

        return delivered


class SharedBatches:
    """The worker's one ``OutputBatches``, which every agent and sink appends to and every
    agent acknowledges its input records through (``get().done(event)``). Made on first use:
    faust makes its aiokafka producer when the app starts, after the agents are defined."""

    def __init__(
        self, producer: Callable[[], AIOKafkaProducer], observe_flush: ObserveFlush | None = None
    ) -> None:
        self._producer = producer
        self._observe_flush = observe_flush
        self._batches: OutputBatches | None = None
        self._hooks: list[BeforeFlush] = []
        self._state_topics: set[str] = set()
        self._after_state_topics: set[str] = set()

    def holds_state(self, changelog: str) -> None:
        """``changelog`` is a table's: its batches go once the flush's outputs are delivered."""
        self._state_topics.add(changelog)

    def follows_state(self, topic: str) -> None:
        """``topic``'s batches go once the flush's changelogs are delivered too."""
        self._after_state_topics.add(topic)

    def before_flush(self, hook: BeforeFlush) -> None:
        """``OutputBatches.before_flush``, for a sink made before the batches are."""
        self._hooks.append(hook)
        if self._batches is not None:
            self._batches.before_flush(hook)

    def get(self) -> OutputBatches:
        if self._batches is None:
            self._batches = OutputBatches(
                self._producer(),
                observe_flush=self._observe_flush,
                state_topics=self._state_topics,  # the sets themselves: a sink may come later
                after_state_topics=self._after_state_topics,
            )
            for hook in self._hooks:
                self._batches.before_flush(hook)
        return self._batches
