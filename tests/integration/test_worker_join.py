"""Ingress -> Kafka -> worker: one state per call in any order, recovery after SIGKILL."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED, LIVE_CALLS
from tests.callstate_truth import folded
from tests.contract_support import committed
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.worker_support import (
    call_events,
    post_all,
    wait_all_completed,
    wait_for_states,
    worker_process,
)
from tests.kafka_support import read_topic, read_until

# Orders of one call's four webhooks (ringing, answered, hangup, CDR = 0..3), with duplicates.
ORDERS = [
    [0, 1, 2, 3],
    [3, 2, 1, 0],
    [3, 0, 1, 2, 3],
    [0, 2, 1, 3, 1],
    [2, 3, 0, 0, 1],
    [1, 1, 3, 2, 0, 2],
]


async def test_any_order_with_duplicates_gives_one_state_and_its_completed_call(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    calls = {f"order-{i}-{uuid.uuid4().hex[:6]}": order for i, order in enumerate(ORDERS)}
    async with running_ingress(settings) as ingress:
        with worker_process(kafka_bootstrap, settings.topic_prefix, tmp_path):
            await asyncio.gather(
                *(
                    post_all(ingress, [call_events(call_id)[i] for i in order])
                    for call_id, order in calls.items()
                )
            )
            truth = {call: folded(call_events(call)) for call in calls}
            # Each call's highest revision the truth's completed call, at the count of its events;
            # which lower ones come depends on which topic the worker read first.
            _, completed = await wait_all_completed(ingress, kafka_bootstrap, truth)
            # A call first seen ringing or answered is live until its tombstone.
            were_live = {call for call, order in calls.items() if order[0] in (0, 1)}

            def tombstones_missing(records: list[ConsumerRecord]) -> str | None:
                ended = {r.key.decode() for r in records if r.value is None}
                return (
                    f"no tombstone for {sorted(were_live - ended)}" if were_live - ended else None
                )

            live = await read_until(kafka_bootstrap, ingress.topics[LIVE_CALLS], tombstones_missing)
            call_states = await read_topic(kafka_bootstrap, ingress.topics[CALL_STATE], expect=1)
    # What a consumer reads validates against the published schemas, tombstones included.
    for name, records in (
        (LIVE_CALLS, live),
        (CALL_STATE, call_states),
        (CALLS_COMPLETED, completed),
    ):
        validator = committed(name)
        for record in records:
            value = None if record.value is None else orjson.loads(record.value)
            assert list(validator.iter_errors(value)) == [], (name, value)


# RocksDB: the second worker reopens the first one's store, written without RocksDB's WAL, and
# recovers from the changelog what the kill lost.
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_sigkill_mid_stream_recovers_the_table_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, store: str
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    worker = {"store": store, "data_dir": tmp_path / "worker-data"}
    # Calls of now, so that their windows are open: the shares are in the table too.
    now_ms = int(time.time() * 1000)
    ids = [f"kill-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(30)]
    calls = {call: call_events(call, now_ms) for call in ids}
    app_id = f"{settings.topic_prefix}worker"
    async with running_ingress(settings) as ingress:
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, name="first", **worker
        ) as first:
            # Every call rings and is answered; the first ten also end, with their CDR.
            sent = {
                call: bodies[: 4 if i < 10 else 2] for i, (call, bodies) in enumerate(calls.items())
            }
            await asyncio.gather(*(post_all(ingress, bodies) for bodies in sent.values()))
            # The first worker published every call's state as the fold of what was sent.
            before = {call: folded(bodies) for call, bodies in sent.items()}
            await wait_for_states(ingress, kafka_bootstrap, before)
            first.kill()
        # The rest arrives while no worker runs; the next one must recover the table first.
        rest = list(calls.values())[10:]
        await asyncio.gather(*(post_all(ingress, bodies[2:]) for bodies in rest))
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, name="second", **worker
        ) as second:
            truth = {call: folded(bodies) for call, bodies in calls.items()}
            # Each call's highest revision once, its true completed call: none doubled.
            await wait_all_completed(ingress, kafka_bootstrap, truth, replayed=True)
    # Its tables recovered, the second worker sent the first ten calls' window shares again
    # (docs/architecture.md, The worker's guarantee); its log is whole once it stopped.
    resent = re.findall(r"sending the (\d+) metric shares", second.log.read_text())
    assert resent, second.log.read_text()[-3000:]
    assert max(map(int, resent)) > 0
