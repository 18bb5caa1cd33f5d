"""Read back what a test wrote to Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

Missing = Callable[[list[ConsumerRecord]], str | None]
"""What the records read so far still lack (a message for the failure), or None once none."""
CAUGHT_UP_EVERY_S = 2.0  # how often :func:`read_folding` asks whether it reached the ends


async def read_until(
    bootstrap: str, topic: str, missing: Missing, *, deadline_s: float = 30.0, settle_s: float = 0.0
) -> list[ConsumerRecord]:
    """Every record of ``topic``, read until ``missing`` finds nothing lacking, then for
    ``settle_s`` more to catch any extra record that should not be there.

    Raises AssertionError at the deadline, with what was still missing: a wait that returned
    silently would let the test go on to compare a state that was never reached.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # A topic created after the consumer started (a worker's changelog) is seen within a
        # second, not after the default five minutes.
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + deadline_s
        while (lack := missing(records)) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} after {deadline_s} s: {lack}")
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records += batch
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
    finally:
        await consumer.stop()
    return records


async def read_folding(
    bootstrap: str,
    topics: list[str],
    fold: Callable[[list[ConsumerRecord]], None],
    lacking: Callable[[], str | None],
    *,
    deadline_s: float = 60.0,
) -> None:
    """Every record of ``topics`` from their start, each batch handed to ``fold`` and not
    kept: :func:`read_until` for topics too large to hold (the soak's millions of records).
    Each time the reader has caught up with every partition's end (asked at most every
    :data:`CAUGHT_UP_EVERY_S`), ``lacking()`` says what the records folded so far lack;
    returns once it says nothing, raises at the deadline with its last answer."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + deadline_s
        lack = "the ends not reached yet"
        asked = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for batch in batches.values():
                fold(batch)
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"{', '.join(topics)} after {deadline_s} s: {lack}")
            if now - asked < CAUGHT_UP_EVERY_S:
                continue
            asked = now
            assigned = consumer.assignment()
            if {partition.topic for partition in assigned} != set(topics):
                continue
            ends = await consumer.end_offsets(list(assigned))
            for partition in assigned:
                if await consumer.position(partition) < ends[partition]:
                    break
            else:
                if (lack_now := lacking()) is None:
                    return
                lack = lack_now
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, deadline_s: float = 30.0, settle_s: float = 0.0
) -> list[ConsumerRecord]:
    """Every record of ``topic`` once at least ``expect`` arrived (see :func:`read_until`)."""

    def missing(records: list[ConsumerRecord]) -> str | None:
        return None if len(records) >= expect else f"{len(records)} of {expect} records"

    return await read_until(bootstrap, topic, missing, deadline_s=deadline_s, settle_s=settle_s)


async def wait_while_lacking(
    check: Callable[[], Awaitable[str | None]], what: str, deadline_s: float = 90
) -> None:
    """Await ``check()`` until it returns None (nothing lacking); raises with its last answer."""
    deadline = time.monotonic() + deadline_s
    while (lack := await check()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {deadline_s} s: {lack}")
        await asyncio.sleep(0.2)
