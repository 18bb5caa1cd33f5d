"""The metrics' writes without faust or a broker: the calls folded within one flush change each
share and window once, in the flush that acknowledges their input records."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from callstream.kafka.partitioning import partition_for_key
from callstream.processors import metric_sinks
from callstream.processors.app import OUTPUT_TOPICS, PRODUCER_MAX_BATCH_BYTES, SHARE_ROWS
from callstream.processors.batches import RECORD_OVERHEAD_BYTES, SharedBatches
from callstream.processors.callmetrics.combine import ShareUpdate
from callstream.processors.callmetrics.partials import Partial
from callstream.processors.callmetrics.windows import DAY_MS, MetricSettings, WindowKey
from callstream.processors.handlers import FoldHandler
from callstream.processors.metric_sinks import ShareWriter, WindowHandler
from callstream.processors.sink import Outputs, StepSink, TableSink
from callstream.processors.sweep import OpenCalls
from callstream.processors.tablestore import TableStore
from callstream.schemas.topics import METRICS
from tests.unit.schema_fixtures import cdr, with_
from tests.unit.test_sweep import deadline_of
from tests.unit.test_tablestore import FaustStore
from tests.unit.test_worker_batches import Event, Producer, flush_delivered, settle
from tests.unit.test_worker_handlers import EVENTS, Input, Message

NOW = cdr()["time_end_call"] * 1000 + 1000  # the sample's windows are open
SETTINGS = MetricSettings()
KEYS_PER_CALL = 4 * len(SETTINGS.windows)  # all, hotline, agent, direction: each window
UPDATES, CALLS, WINDOWS = "w-share-updates", "w-call-state-changelog", "w-windows-changelog"


class Worker:
    """The call-state fold with its shares, and the windows agent, on one fake producer."""

    def __init__(self) -> None:
        self.producer = Producer()
        self.batches = SharedBatches(lambda: self.producer)  # type: ignore[arg-type,return-value]

        def sink(name: str, changelog: str) -> TableSink:
            return TableSink(name, TableStore(FaustStore(), None), changelog, self.batches)

        self.calls = sink("call-state", CALLS)
        self.shares = self.calls.section("metric-shares", SHARE_ROWS)
        self.windows = sink("metric-windows", WINDOWS)
        self.writer = writer = ShareWriter(
            self.shares,
            self.calls,
            UPDATES,
            12,
            settings=SETTINGS,
            observe_late=lambda window, count: None,
            now_ms=lambda: NOW,
        )
        outputs = Outputs({name: f"p.{name}" for name in OUTPUT_TOPICS}, self.batches)
        step_sink = StepSink(self.calls, outputs, OpenCalls(60, deadline_of), writer)
        self.fold = FoldHandler(step_sink, self.batches, lambda topic, outcome: None)
        self.emitted: Counter[str] = Counter()
        self.window_handler = WindowHandler(
            self.windows,
            f"p.{METRICS}",
            self.batches,
            settings=SETTINGS,
            observe_emit=lambda window, count: self.emitted.update({window: count}),
            now_ms=lambda: NOW,
        )

    def resend(self, partitions: list[int]) -> int:
        return self.writer.resend(partitions)

    async def flushed(self) -> list[tuple[str, int, bytes, bytes]]:
        """Flush; Kafka acknowledges it: (topic, partition, key, value) of what it sent."""
        before = len(self.producer.sent)
        await flush_delivered(self.batches.get(), self.producer)
        return [
            (tp.topic, tp.partition, key, value or b"")
            for tp, batch, _ in self.producer.sent[before:]
            for key, value in batch.records
        ]


def a_cdr(call_id: str, partition: int = 5) -> Input:
    return Input(Message(EVENTS, partition), with_(cdr(), transaction_id=call_id))


async def test_calls_folded_within_one_flush_change_each_share_and_window_once() -> None:
    worker = Worker()
    inputs = [a_cdr(f"call-{n}") for n in range(3)]  # one partition, the same windows
    for record in inputs:
        await worker.fold(record)
    sent = await worker.flushed()
    assert [record.acks for record in inputs] == [1, 1, 1]
    shares = [record for record in sent if record[0] == CALLS and record[2][:1] == SHARE_ROWS]
    assert len(shares) == len({key for _, _, key, _ in shares}) == KEYS_PER_CALL
    updates = [record for record in sent if record[0] == UPDATES]
    assert sorted(key for _, _, key, _ in updates) == [b"agent", b"all", b"direction", b"hotline"]
    decoded = [
        update
        for _, _, _, value in updates
        for update in msgspec.json.decode(value, type=list[ShareUpdate])
    ]
    assert len(decoded) == KEYS_PER_CALL
    assert {update.share.offered for update in decoded} == {3}

    for _, partition, _, value in updates:
        assert await worker.window_handler.apply(partition, value) > 0
    published = await worker.flushed()
    metrics = [record for record in published if record[0] == f"p.{METRICS}"]
    assert len(metrics) == len({key for _, _, key, _ in metrics}) == KEYS_PER_CALL
    assert {msgspec.json.decode(value)["offered"] for _, _, _, value in metrics} == {3}
    assert len([record for record in published if record[0] == WINDOWS]) == KEYS_PER_CALL
    assert sum(worker.emitted.values()) == KEYS_PER_CALL

    # The same updates again (a replay) change no window and publish nothing.
    for _, partition, _, value in updates:
        assert await worker.window_handler.apply(partition, value) == 0
    assert await worker.flushed() == []


async def test_rows_count_a_share_or_window_once_however_often_it_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writers tell the table whether a row was there when they first read it: a flush
    reads no row again, and the rows gauge counts what the store holds."""
    worker = Worker()
    reads: list[bytes] = []
    for sink in (worker.calls, worker.windows):  # the shares are in the calls' store
        monkeypatch.setattr(sink.store, "get", recorded(sink.store.get, reads))

    async def flushed() -> list[tuple[str, int, bytes, bytes]]:
        before = len(reads)
        sent = await worker.flushed()
        assert reads[before:] == []
        return sent

    for calls in (range(2), range(2, 4)):  # the second flush changes the same rows again
        for n in calls:
            await worker.fold(a_cdr(f"call-{n}"))
        for topic, partition, _, value in await flushed():
            if topic == UPDATES:
                await worker.window_handler.apply(partition, value)
        await flushed()
        assert worker.calls.rows == calls.stop
        assert worker.shares.rows == worker.windows.rows == KEYS_PER_CALL
    assert reads  # the writers did read, before the flushes
    assert len(list(worker.shares.items())) == KEYS_PER_CALL
    assert len(list(worker.windows.items())) == KEYS_PER_CALL


Get = Callable[[int, bytes], bytes | None]


def recorded(get: Get, reads: list[bytes]) -> Get:
    """``get``, noting each key it reads in ``reads``."""

    def reading(partition: int, key: bytes) -> bytes | None:
        reads.append(key)
        return get(partition, key)

    return reading


async def test_a_calls_shares_go_out_in_the_flush_of_its_state_after_its_changelog() -> None:
    worker = Worker()
    record = a_cdr("call-1")
    await worker.fold(record)
    assert worker.producer.sent == []  # nothing before the flush
    flush = asyncio.ensure_future(worker.batches.get().flush())
    while not flush.done():  # Kafka acknowledges every batch as it comes
        await settle()
        sent = [(tp.topic, done.done()) for tp, _, done in worker.producer.sent]
        if any(topic == CALLS for topic, _ in sent):  # a changelog once every output is in
            assert all(done for topic, done in sent if topic not in {CALLS, UPDATES})
        if any(topic == UPDATES for topic, _ in sent):  # shares once the changelog is in
            assert all(done for topic, done in sent if topic == CALLS)
        for index, (_, done) in enumerate(sent):
            if not done:
                worker.producer.deliver(index)
    await settle()
    topics = [tp.topic for tp, _, _ in worker.producer.sent]
    assert {CALLS, UPDATES} <= set(topics)
    assert topics.index(CALLS) < topics.index(UPDATES)
    # The call's state and its shares: one batch of its partition's changelog, written whole.
    assert topics.count(CALLS) == 1
    keys = [key for key, _ in worker.producer.sent[topics.index(CALLS)][1].records]
    assert keys.count(b"call-1") == 1
    assert len(keys) == 1 + KEYS_PER_CALL
    assert record.acks == 1
    # Delivered: the shares are in the store, beside the call, and read back from it.
    assert len(worker.shares.store.store.data) == 1 + KEYS_PER_CALL
    assert len(list(worker.shares.items())) == KEYS_PER_CALL
    assert [key for key, _ in worker.calls.items()] == [b"call-1"]


def share_updates(sent: list[tuple[str, int, bytes, bytes]]) -> list[ShareUpdate]:
    return [
        update
        for topic, _, _, value in sent
        if topic == UPDATES
        for update in msgspec.json.decode(value, type=list[ShareUpdate])
    ]


async def test_every_stored_share_of_a_recovered_partition_is_sent_again() -> None:
    """A worker killed once its changelog was delivered and before its share updates were
    leaves shares no window has: the worker that recovers the partition sends them all."""
    worker = Worker()
    await worker.fold(a_cdr("call-1", partition=5))
    await worker.fold(a_cdr("call-2", partition=7))
    first = share_updates(await worker.flushed())
    assert len(first) == 2 * KEYS_PER_CALL

    assert worker.resend([5]) == KEYS_PER_CALL
    again = await worker.flushed()
    assert {topic for topic, _, _, _ in again} == {UPDATES}  # sent, not written again
    assert sorted(share_updates(again), key=repr) == sorted(
        (update for update in first if update.partition == 5), key=repr
    )
    assert await worker.flushed() == []  # once

    # A share changed before the flush goes once, at its newer version.
    assert worker.resend([5, 7]) == 2 * KEYS_PER_CALL
    await worker.fold(a_cdr("call-3", partition=5))
    updates = share_updates(await worker.flushed())
    assert len(updates) == 2 * KEYS_PER_CALL
    assert {u.share.offered for u in updates if u.partition == 5} == {2}
    assert {u.share.offered for u in updates if u.partition == 7} == {1}


async def test_shares_sent_again_go_a_bounded_number_a_flush_and_bring_their_flushes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metric_sinks, "RESEND_PER_FLUSH", 10)
    worker = Worker()
    await worker.fold(a_cdr("call-1", partition=5))
    first = share_updates(await worker.flushed())
    assert worker.resend([5]) == KEYS_PER_CALL == 16
    resent = share_updates(await worker.flushed())
    assert len(resent) == 10
    # The other six in a flush of their own, with no other traffic to bring one.
    worker.batches.get().linger_s = 0.001
    before = len(worker.producer.sent)
    deadline = time.monotonic() + 5.0
    while not any(tp.topic == UPDATES for tp, _, _ in worker.producer.sent[before:]):
        assert time.monotonic() < deadline, "the rest of the shares were never sent"
        await asyncio.sleep(0.01)
        for index in range(before, len(worker.producer.sent)):
            if not worker.producer.sent[index][2].done():
                worker.producer.deliver(index)
    resent += [
        update
        for tp, batch, _ in worker.producer.sent[before:]
        if tp.topic == UPDATES
        for _, value in batch.records
        for update in msgspec.json.decode(value or b"", type=list[ShareUpdate])
    ]
    assert sorted(resent, key=repr) == sorted(first, key=repr)


async def test_a_window_past_its_retention_takes_no_share() -> None:
    """A share sent again after its window was dropped must not bring the window back."""
    worker = Worker()
    await worker.fold(a_cdr("call-1"))
    updates = [r for r in await worker.flushed() if r[0] == UPDATES]
    worker.window_handler.now_ms = lambda: NOW + SETTINGS.retention_ms + 3 * DAY_MS
    for _, partition, _, value in updates:
        assert await worker.window_handler.apply(partition, value) == 0
    assert await worker.flushed() == []


class KafkaSizedBatch:
    """aiokafka's BatchBuilder as to its size: full past the producer's max batch bytes (the
    first record always fits)."""

    def __init__(self) -> None:
        self.size = 0
        self.records = 0

    def append(self, *, timestamp: int | None, key: bytes, value: bytes | None) -> object | None:
        size = len(key) + len(value or b"") + RECORD_OVERHEAD_BYTES
        if self.records and self.size + size > PRODUCER_MAX_BATCH_BYTES:
            return None
        self.size += size
        self.records += 1
        return object()

    def record_count(self) -> int:
        return self.records

    def close(self) -> None:
        pass


class KafkaSizedProducer:
    """Delivers every batch at once, and notes each flush's topic partitions in order."""

    def __init__(self) -> None:
        self.flushes: list[list[tuple[str, int]]] = []

    def create_batch(self) -> KafkaSizedBatch:
        return KafkaSizedBatch()

    async def send_batch(self, batch: object, topic: str, *, partition: int) -> asyncio.Future[Any]:
        self.flushes[-1].append((topic, partition))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(
            RecordMetadata(topic, partition, TopicPartition(topic, partition), 0, -1, 0, 0)
        )
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(12))


async def test_a_flush_holds_one_batch_of_the_windows_changelog_partition() -> None:
    """A catching-up windows agent changes hundreds of an agent dimension's windows within one
    flush, every one on the dimension's partition of the windows table: their changelog records
    stay in one batch, so that the flush reaches Kafka as one request (processors/batches.py)."""
    worker = Worker()
    producer = worker.producer = KafkaSizedProducer()  # type: ignore[assignment]
    batches = worker.batches.get()
    batches.linger_s = 3600  # flushes come from the size bounds only
    batches.before_flush(lambda flushing: producer.flushes.append([]))
    owner = partition_for_key(b"agent", 12)
    updates = [
        ShareUpdate(
            WindowKey(
                "agent", f"10{agent:03d}", window, NOW // 86_400_000 * 86_400_000
            ).table_key(),
            partition,
            Partial(
                version=1,
                offered=4,
                answered=3,
                ring_count=3,
                ring_ms=21_000,
                top_ring=[(9_000, 1)],
                talk_count=3,
                talk_ms=300_000,
                billed_ms=300_000,
                price_units=4_500_000,
                names={f"Agent {agent:03d}": 4},
            ),
        )
        for partition in range(12)
        for agent in range(300)
        for window in SETTINGS.windows
    ]
    for start in range(0, len(updates), 100):  # the share writers' records, 100 updates each
        record = msgspec.json.encode(updates[start : start + 100])
        await worker.window_handler.apply(owner, record)
        await batches.done(Event())
    await batches.flush()
    await settle()
    assert len(worker.windows.store.store.data) == 300 * len(SETTINGS.windows)
    for flush in producer.flushes:
        assert len(flush) == len(set(flush)), Counter(flush).most_common(1)


async def test_a_section_keeps_its_rows_apart_in_its_tables_store_and_changelog() -> None:
    producer = Producer()
    batches = SharedBatches(lambda: producer)  # type: ignore[arg-type,return-value]
    calls = TableSink("call-state", TableStore(FaustStore(), None), CALLS, batches)
    shares = calls.section("metric-shares", SHARE_ROWS)
    await calls.write(1, b"same", b"a call")
    await shares.write(1, b"same", b"a share")
    assert (calls.get(1, b"same"), shares.get(1, b"same")) == (b"a call", b"a share")
    assert list(calls.items()) == [(b"same", b"a call")]
    assert list(shares.items()) == [(b"same", b"a share")]
    assert (calls.rows, shares.rows) == (1, 1)
    await flush_delivered(batches.get(), producer)
    [(tp, batch, _)] = producer.sent  # one batch of the one changelog
    assert tp.topic == CALLS
    assert batch.records == [
        (b"same", b"a call"),
        (SHARE_ROWS + b"same", b"a share"),
    ]
    with pytest.raises(ValueError, match="no section itself"):
        shares.section("nested", b"\xfe")
