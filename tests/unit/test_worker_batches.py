"""An input record is acknowledged only once Kafka acknowledged every batch holding its outputs,
and a partition's records reach the producer in the order they were added."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata, TopicPartition

from callstream.kafka.partitioning import partition_for_key
from callstream.processors import batches as batches_module
from callstream.processors.batches import MAX_FLUSH_BYTES, MAX_PARTITION_BYTES, OutputBatches


class Event:
    """Stands in for a faust event: counts its acks."""

    def __init__(self) -> None:
        self.acks = 0

    def ack(self) -> bool:
        self.acks += 1
        return True


class Batch:
    """aiokafka's BatchBuilder as the batches use it: append until full (the first always fits)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes | None]] = []
        self.closed = False

    def append(self, *, timestamp: int | None, key: bytes, value: bytes | None) -> object | None:
        assert not self.closed
        if self.records and len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)

    def close(self) -> None:
        self.closed = True


class Producer:
    """Records what was handed over; the test decides when Kafka acknowledges each batch."""

    def __init__(self, capacity: int = 100, slow_topic: str = "") -> None:
        self.capacity = capacity
        self.slow_topic = slow_topic  # its sends suspend longer
        self.sent: list[tuple[TopicPartition, Batch, asyncio.Future[RecordMetadata]]] = []
        self.handed_over = asyncio.Event()

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        for _ in range(10 if topic == self.slow_topic else 1):
            await asyncio.sleep(0)  # a real send may suspend (metadata, a full accumulator)
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.sent.append((TopicPartition(topic, partition), batch, future))
        self.handed_over.set()
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(6))

    def deliver(self, index: int, base_offset: int = 0) -> None:
        tp, _, future = self.sent[index]
        future.set_result(RecordMetadata(tp.topic, tp.partition, tp, base_offset, -1, 0, 0))


async def settle() -> None:
    """Let the loop run the done-callbacks already scheduled."""
    for _ in range(5):
        await asyncio.sleep(0)


async def flush_delivered(batches: OutputBatches, producer: Producer) -> None:
    """Flush while Kafka acknowledges each batch as it comes (a flush sends the tables'
    changelogs only once its outputs are delivered)."""
    flush = asyncio.ensure_future(batches.flush())
    while not flush.done():
        await settle()
        for index, (_, _, future) in enumerate(producer.sent):
            if not future.done():
                producer.deliver(index)
    await flush
    await settle()


async def one_record_in_two_batches(producer: Producer) -> Event:
    """An input record whose two outputs went to two partitions, flushed."""
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    event = Event()
    await batches.add("state", 0, b"k", b"v")
    await batches.add("live", 3, b"k", b"w")
    await batches.done(event)
    await batches.flush()
    return event


async def test_a_record_is_acked_once_every_batch_of_its_flush_is_delivered() -> None:
    producer = Producer()
    event = await one_record_in_two_batches(producer)
    assert [tp for tp, _, _ in producer.sent] == [
        TopicPartition("state", 0),
        TopicPartition("live", 3),
    ]
    producer.deliver(1)
    await settle()
    assert event.acks == 0
    producer.deliver(0)
    await settle()
    assert event.acks == 1


async def test_a_tables_changelog_is_sent_only_once_the_flushs_outputs_are_delivered() -> None:
    """A kill before the changelog record leaves the input to be processed again, publishing
    its outputs again (idempotent); the other way round it would find its change made and
    publish nothing. What follows the state (the metric shares' updates, which must carry only
    what the tables hold: docs/architecture.md) goes once the changelog is delivered too."""
    producer = Producer()
    batches = OutputBatches(
        producer,  # type: ignore[arg-type]
        state_topics={"changelog"},
        after_state_topics={"share-updates"},
    )
    event = Event()
    await batches.add("share-updates", 2, b"dimension", b"share")
    await batches.add("changelog", 1, b"k", b"state")
    await batches.add("live", 3, b"k", b"w")
    await batches.add("completed", 0, b"k", b"c")
    await batches.done(event)
    flush = asyncio.ensure_future(batches.flush())
    await settle()
    assert [tp.topic for tp, _, _ in producer.sent] == ["live", "completed"]
    producer.deliver(0)
    await settle()
    assert len(producer.sent) == 2  # one output still in flight
    producer.deliver(1)
    await settle()
    assert [tp.topic for tp, _, _ in producer.sent] == ["live", "completed", "changelog"]
    producer.deliver(2)
    await flush
    assert [tp.topic for tp, _, _ in producer.sent][3:] == ["share-updates"]
    assert event.acks == 0
    producer.deliver(3)
    await settle()
    assert event.acks == 1


async def test_nothing_follows_a_failed_changelog(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[str] = []
    monkeypatch.setattr(batches_module, "_exit_on_failure", lambda what, error: exits.append(what))
    producer = Producer()
    batches = OutputBatches(
        producer,  # type: ignore[arg-type]
        state_topics={"changelog"},
        after_state_topics={"share-updates"},
    )
    await batches.add("share-updates", 2, b"dimension", b"share")
    await batches.add("changelog", 1, b"k", b"state")
    await batches.done(Event())
    flush = asyncio.ensure_future(batches.flush())
    await settle()
    assert [tp.topic for tp, _, _ in producer.sent] == ["changelog"]  # no outputs: at once
    producer.sent[0][2].set_exception(KafkaError("refused"))
    await flush
    assert [tp.topic for tp, _, _ in producer.sent] == ["changelog"]
    assert exits == ["a batch"]


async def test_a_changelog_is_never_sent_after_a_failed_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exits: list[str] = []
    monkeypatch.setattr(batches_module, "_exit_on_failure", lambda what, error: exits.append(what))
    producer = Producer()
    batches = OutputBatches(producer, state_topics={"changelog"})  # type: ignore[arg-type]
    event = Event()
    await batches.add("changelog", 1, b"k", b"state")
    await batches.add("live", 3, b"k", b"w")
    await batches.done(event)
    flush = asyncio.ensure_future(batches.flush())
    await settle()
    producer.sent[0][2].set_exception(KafkaError("refused"))
    await flush
    assert [tp.topic for tp, _, _ in producer.sent] == ["live"]
    assert exits == ["a batch"]
    assert event.acks == 0


async def test_a_record_that_produced_nothing_is_acked_at_its_flush() -> None:
    batches = OutputBatches(Producer())  # type: ignore[arg-type]
    event = Event()
    await batches.done(event)
    await batches.flush()
    assert event.acks == 1


async def test_a_record_that_produced_nothing_waits_for_the_flush_before() -> None:
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    first, second = Event(), Event()
    await batches.add("state", 0, b"k", b"v")
    await batches.done(first)
    await batches.flush()
    await batches.done(second)
    await batches.flush()
    assert (first.acks, second.acks) == (0, 0)
    producer.deliver(0)
    await settle()
    assert (first.acks, second.acks) == (1, 1)


async def test_a_full_batch_flushes_early_and_its_record_waits_for_both_flushes() -> None:
    producer = Producer(capacity=2)
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    event = Event()
    for value in (b"1", b"2", b"3"):  # the third fills the first batch: a flush in between
        await batches.add("state", 0, b"k", value)
    await batches.done(event)
    second = asyncio.ensure_future(batches.flush())
    producer.deliver(0)
    await second
    assert [batch.records for _, batch, _ in producer.sent] == [
        [(b"k", b"1"), (b"k", b"2")],
        [(b"k", b"3")],
    ]
    await settle()
    assert event.acks == 0  # its last record is not delivered yet
    producer.deliver(1)
    await settle()
    assert event.acks == 1


async def test_a_cancelled_batch_leaves_its_records_unacknowledged() -> None:
    producer = Producer()
    event = await one_record_in_two_batches(producer)
    producer.sent[0][2].cancel()
    producer.deliver(1)
    await settle()
    assert event.acks == 0


async def test_the_changelog_hears_the_offset_of_its_batchs_last_record() -> None:
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    heard: list[tuple[TopicPartition, int]] = []
    for key in (b"a", b"b", b"c"):
        await batches.add("changelog", 2, key, b"v", lambda tp, offset: heard.append((tp, offset)))
    await batches.flush()
    producer.deliver(0, base_offset=40)
    await settle()
    assert heard == [(TopicPartition("changelog", 2), 42)]


async def test_concurrent_flushes_hand_a_partition_over_in_order() -> None:
    producer = Producer(slow_topic="other")
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    await batches.add("other", 0, b"x", b"0")  # the first flush suspends on this one first
    await batches.add("state", 0, b"k", b"1")
    first = asyncio.ensure_future(batches.flush())
    await asyncio.sleep(0)  # the first flush took its batches and is handing them over
    await batches.add("state", 0, b"k", b"2")
    second = asyncio.ensure_future(batches.flush())
    await first
    for index in range(len(producer.sent)):
        producer.deliver(index)
    await second
    values = [batch.records[0][1] for tp, batch, _ in producer.sent if tp.topic == "state"]
    assert values == [b"1", b"2"]


async def test_records_are_flushed_after_the_linger_without_being_asked() -> None:
    producer = Producer()
    batches = OutputBatches(producer, linger_s=0.001)  # type: ignore[arg-type]
    event = Event()
    await batches.add("state", 0, b"k", b"v")
    await batches.done(event)
    await asyncio.wait_for(producer.handed_over.wait(), 5)
    assert len(producer.sent) == 1
    producer.deliver(0)
    await settle()
    assert event.acks == 1


@pytest.mark.parametrize("key", [b"", b"call-1", b"ae5f56fc-7baa-4537"])
async def test_an_output_goes_to_its_keys_default_partition(key: bytes) -> None:
    batches = OutputBatches(Producer())  # type: ignore[arg-type]
    assert await batches.partition("state", key) == partition_for_key(key, 6)


async def test_a_flush_waits_for_the_one_before_to_be_delivered_and_closes_its_batches() -> None:
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    await batches.add("state", 0, b"k", b"1")
    await batches.flush()
    await batches.add("state", 0, b"k", b"2")
    second = asyncio.ensure_future(batches.flush())
    await settle()
    assert len(producer.sent) == 1  # the second waits: the producer would queue it apart
    assert producer.sent[0][1].closed  # no linger of the producer's own, nothing appended
    producer.deliver(0)
    await second
    assert [batch.records for _, batch, _ in producer.sent] == [[(b"k", b"1")], [(b"k", b"2")]]


async def test_a_flush_for_size_comes_between_input_records_never_inside_one() -> None:
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    big = b"x" * (MAX_FLUSH_BYTES // 2)
    event = Event()
    await batches.add("changelog", 0, b"k", big)
    await batches.add("state", 0, b"k", big)  # over the limit, inside a record: no flush yet
    assert producer.sent == []
    await batches.done(event)  # between records: now
    flushed = [(tp.topic, batch.records) for tp, batch, _ in producer.sent]
    assert flushed == [("changelog", [(b"k", big)]), ("state", [(b"k", big)])]
    producer.deliver(0)
    producer.deliver(1)
    await settle()
    assert event.acks == 1


async def test_a_record_that_produced_nothing_is_acked_after_the_linger_alone() -> None:
    batches = OutputBatches(Producer(), linger_s=0.001)  # type: ignore[arg-type]
    event = Event()
    await batches.done(event)  # no record added: still flushed, or a quiet worker never acks
    acked = asyncio.Event()
    event.ack = lambda: acked.set() or True  # type: ignore[method-assign]
    await asyncio.wait_for(acked.wait(), 5)


async def test_a_record_added_while_a_full_batch_is_flushed_is_kept() -> None:
    producer = Producer(capacity=2)
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    await batches.add("state", 0, b"a", b"1")
    await batches.add("state", 0, b"a", b"2")
    filling = asyncio.ensure_future(batches.add("state", 0, b"b", b"3"))  # flushes first
    await asyncio.sleep(0)  # that flush is handing its batch over
    await batches.add("state", 0, b"c", b"4")  # the other agent, meanwhile
    await filling
    producer.deliver(0)
    await batches.flush()
    sent = [record for _, batch, _ in producer.sent for record in batch.records]
    assert sorted(sent) == [(b"a", b"1"), (b"a", b"2"), (b"b", b"3"), (b"c", b"4")]


async def test_a_flush_is_timed_from_its_start_until_its_records_are_acked() -> None:
    producer = Producer()
    timed: list[float] = []
    batches = OutputBatches(producer, observe_flush=timed.append)  # type: ignore[arg-type]
    event = Event()
    await batches.add("state", 0, b"k", b"v")
    await batches.done(event)
    await batches.flush()
    await batches.done(Event())  # produced nothing: no flush of batches to time
    await batches.flush()
    assert timed == []  # not delivered yet
    producer.deliver(0)
    await settle()
    assert event.acks == 1
    assert len(timed) == 1
    assert 0 <= timed[0] < 5


async def test_a_before_flush_hook_appends_into_the_flush_that_acks_its_inputs() -> None:
    producer = Producer(capacity=2)
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    held: list[bytes] = []
    heard: list[tuple[TopicPartition, int]] = []

    def hook(flushing: OutputBatches) -> None:
        for value in held:
            flushing.append("windows", 1, b"w", value, lambda tp, offset: heard.append((tp, 0)))
        held.clear()

    batches.before_flush(hook)
    event = Event()
    await batches.add("state", 0, b"k", b"v")
    held.extend([b"1", b"2", b"3"])  # three: one batch fills, and is set aside
    await batches.done(event)
    await batches.flush()
    sent = [(tp.topic, batch.records) for tp, batch, _ in producer.sent]
    assert sent == [
        ("windows", [(b"w", b"1"), (b"w", b"2")]),
        ("state", [(b"k", b"v")]),
        ("windows", [(b"w", b"3")]),
    ]
    producer.deliver(2)
    producer.deliver(1)
    await settle()
    assert (event.acks, heard) == (0, [(TopicPartition("windows", 1), 0)])  # the last batch's
    producer.deliver(0)
    await settle()
    assert event.acks == 1
    assert heard == [(TopicPartition("windows", 1), 0)]  # the full batch tells nothing
    await batches.flush()
    assert len(producer.sent) == 3  # nothing held any more: nothing sent


async def test_reserved_bytes_bring_a_flush_between_input_records() -> None:
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    batches.before_flush(lambda flushing: flushing.append("windows", 0, b"w", b"v"))
    event = Event()
    batches.reserve("windows", 0, MAX_FLUSH_BYTES)  # what the hook will append
    assert producer.sent == []
    await batches.done(event)
    assert [tp.topic for tp, _, _ in producer.sent] == ["windows"]


async def test_one_partition_full_enough_flushes_between_records_before_the_flush_is() -> None:
    """A partition's records in a flush stay in one batch: once they near a batch's size the
    flush comes at the next record boundary, long before the flush's own bound."""
    producer = Producer()
    batches = OutputBatches(producer)  # type: ignore[arg-type]
    half = b"x" * (MAX_PARTITION_BYTES // 2)
    await batches.add("changelog", 3, b"k", half)
    await batches.add("state", 1, b"k", half)  # another partition: neither is full
    await batches.done(Event())
    assert producer.sent == []
    await batches.add("changelog", 3, b"k", half)  # partition 3 now holds a batch's worth
    assert producer.sent == []  # inside a record: not yet
    await batches.done(Event())
    assert MAX_PARTITION_BYTES * 2 < MAX_FLUSH_BYTES
    assert [(tp.topic, tp.partition) for tp, _, _ in producer.sent] == [
        ("changelog", 3),
        ("state", 1),
    ]


@pytest.mark.parametrize("delivered", [False, True], ids=["overdue", "in-time"])
async def test_a_flush_not_acknowledged_by_its_deadline_ends_the_process(
    monkeypatch: pytest.MonkeyPatch, delivered: bool
) -> None:
    """An idempotent producer retries a batch for ever: the flush's own deadline ends it."""
    exits: list[str] = []
    exited = asyncio.Event()

    def exit_on_failure(what: str, _error: BaseException) -> None:
        exits.append(what)
        exited.set()

    monkeypatch.setattr(batches_module, "_exit_on_failure", exit_on_failure)
    producer = Producer()
    batches = OutputBatches(producer, delivery_deadline_s=0.05)  # type: ignore[arg-type]
    await batches.add("state", 0, b"k", b"v")
    await batches.done(Event())
    await batches.flush()
    if delivered:
        producer.deliver(0)
        await asyncio.sleep(0.2)  # well past the deadline: nothing must happen
    else:
        await asyncio.wait_for(exited.wait(), 2.0)
    assert exits == ([] if delivered else ["a flush"])
