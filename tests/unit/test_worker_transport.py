"""The worker's faust transport: found by its entry point, it seeks partitions with nothing
committed back to their start (faust drops what it fetched during a recovery), and what a
recovery's end fetches reaches the agents."""

from __future__ import annotations

import asyncio
import contextlib

import faust
import faust.transport
import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from callstream.processors.transport import SCHEME, Consumer, Transport, check_transport


def test_faust_finds_the_callstream_transport_by_its_entry_point() -> None:
    check_transport()  # raises when the entry point is not registered
    assert faust.transport.by_url(f"{SCHEME}://127.0.0.1:9092") is Transport
    assert Transport.Consumer is Consumer


async def test_partitions_with_nothing_committed_seek_to_their_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    committed = {TP("in", 0): None, TP("in", 1): 0, TP("in", 2): 17}
    seeks: list[tuple[TP, int]] = []

    async def faust_seek_to_committed(self: object) -> dict[TP, int | None]:
        return committed  # what aiokafka reports: it seeks only partition 2 itself

    async def seek(self: object, partition: TP, offset: int) -> None:
        seeks.append((partition, offset))

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", faust_seek_to_committed)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", seek)
    consumer = object.__new__(Consumer)  # no thread or broker: only the override runs
    assert await consumer.seek_to_committed() == committed
    assert seeks == [(TP("in", 0), 0), (TP("in", 1), 0)]


class FakeKafka:
    """Kafka as faust's consumer sees it: a partition's records, fetched from a position that
    moves past what each fetch returned, and back on a seek."""

    def __init__(self, tp: TP, count: int) -> None:
        self.tp = tp
        self.records = [
            ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])
            for offset in range(count)
        ]
        self.position = 0

    async def fetch(
        self, active_partitions: set[TP] | None, wait_s: float
    ) -> dict[TP, list[ConsumerRecord[bytes, bytes]]]:
        if active_partitions is not None and self.tp in active_partitions:
            fetched, self.position = self.records[self.position :], len(self.records)
            if fetched:
                return {self.tp: fetched}
        await asyncio.sleep(wait_s)  # nothing to fetch: the consumer thread waits, then answers
        return {}

    async def seek_to_committed(self) -> dict[TP, int | None]:
        await asyncio.sleep(0.05)  # a round trip to the broker: the fetcher runs meanwhile
        return {self.tp: None}  # nothing committed

    async def seek(self, offset: int) -> None:
        self.position = offset


async def test_what_faust_fetches_while_ending_a_recovery_reaches_the_agents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """faust ends a recovery (``Recovery.on_recovery_completed``) by resuming the stream
    partitions, seeking them to their committed offsets, resuming its flow control, which empties
    the agents' queues, then resuming the consumer's flow, which already runs (it reads the
    standby changelogs). Each record must reach an agent's queue, once that is done."""
    tp, standby = TP("in", 0), TP("changelog", 0)
    kafka = FakeKafka(tp, 3)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", kafka.seek_to_committed)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", lambda _, tp, offset: kafka.seek(offset))
    monkeypatch.setattr(faust_aiokafka.Consumer, "highwater", lambda _, tp: len(kafka.records))
    # Kafka in place of faust's hook into its consumer thread (a private name: tests only).
    monkeypatch.setattr(
        faust_aiokafka.Consumer,
        "_getmany",
        lambda _, active_partitions, timeout: kafka.fetch(active_partitions, timeout),
    )
    app = faust.App("transport-test", broker=f"{SCHEME}://127.0.0.1:9")
    consumer = app.consumer
    queue = app.FlowControlQueue(maxsize=app.conf.stream_buffer_maxsize, clear_on_resume=True)
    consumer.pause_partitions({tp})  # as during the recovery
    consumer.resume_partitions({standby})
    app.flow_control.resume()
    consumer.resume_flow()

    async def fetch_forever() -> None:  # faust's fetcher: what getmany yields goes to the agents
        while True:
            async for _, message in consumer.getmany(timeout=0.01):
                queue.put_nowait(message)

    fetching = asyncio.create_task(fetch_forever())
    try:
        consumer.resume_partitions({tp})
        await consumer.perform_seek()
        await asyncio.sleep(0.05)  # faust's Recovery._wait returns through the event loop
        app.flow_control.resume()
        consumer.resume_flow()
        offsets: list[int] = []
        with contextlib.suppress(TimeoutError):  # at the deadline, assert what came
            async with asyncio.timeout(5):
                while len(offsets) < len(kafka.records):
                    offsets.append((await queue.get()).offset)
    finally:
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetching
        consumer._thread.thread_loop.close()  # made with the consumer, never started here
    assert offsets == [0, 1, 2]
