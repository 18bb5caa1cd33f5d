"""The worker's faust transport: found by its entry point, and it seeks partitions with nothing
committed back to their start (faust drops what it fetched during a recovery)."""

from __future__ import annotations

import faust.transport
import pytest
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
