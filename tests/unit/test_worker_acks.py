"""An input record is acknowledged only once every send it caused is acknowledged by Kafka."""

from __future__ import annotations

import asyncio
from typing import Any

from callstream.processors.app import ack_when_delivered


class Event:
    """Stands in for a faust event: counts its acks."""

    def __init__(self) -> None:
        self.acks = 0

    def ack(self) -> bool:
        self.acks += 1
        return True


async def settle() -> None:
    """Let the loop run the done-callbacks already scheduled."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_record_that_sent_nothing_is_acked_at_once() -> None:
    event = Event()
    ack_when_delivered(event, [])
    assert event.acks == 1


async def test_a_record_is_acked_once_after_its_last_send_in_any_order() -> None:
    loop = asyncio.get_running_loop()
    sends: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(3)]
    event = Event()
    ack_when_delivered(event, sends)
    for send in (sends[2], sends[0]):
        send.set_result(None)
        await settle()
        assert event.acks == 0
    sends[1].set_result(None)
    await settle()
    assert event.acks == 1


async def test_a_cancelled_send_leaves_the_record_unacknowledged() -> None:
    loop = asyncio.get_running_loop()
    sends: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(2)]
    event = Event()
    ack_when_delivered(event, sends)
    sends[0].cancel()
    sends[1].set_result(None)
    await settle()
    assert event.acks == 0
