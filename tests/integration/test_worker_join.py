"""Ingress -> Kafka -> worker: one state per call in any order, recovery after SIGKILL."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

import msgspec
import orjson
import pytest

from callstream.processors.callstate import apply, without_history
from callstream.schemas.calls import CallState
from callstream.schemas.parse import parse_webhook
from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED, LIVE_CALLS
from tests.contract_support import committed
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.worker_support import (
    call_events,
    post_all,
    wait_all_completed,
    wait_for_records,
    wait_for_states,
    worker_process,
)
from tests.kafka_support import read_topic

# Orders of one call's four webhooks (ringing, answered, hangup, CDR = 0..3), with duplicates.
ORDERS = [
    [0, 1, 2, 3],
    [3, 2, 1, 0],
    [3, 0, 1, 2, 3],
    [0, 2, 1, 3, 1],
    [2, 3, 0, 0, 1],
    [1, 1, 3, 2, 0, 2],
]


def expected_state(events: list[bytes]) -> CallState:
    """What the pure fold makes of the call's events: the ground truth for the pipeline."""
    state = None
    for body in events:
        state, _ = apply(state, parse_webhook(body).payload, received_at_ms=1)
    assert state is not None
    return state


def normalised(state: CallState) -> bytes:
    """The state without delivery history and without its call id, to compare across calls."""
    return msgspec.json.encode(without_history(state)).replace(state.call_id.encode(), b"CALL")


async def test_any_order_with_duplicates_gives_one_state_and_one_completion(
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
            completed = await read_topic(
                kafka_bootstrap, ingress.topics[CALLS_COMPLETED], expect=len(calls), settle_s=2
            )
            states = await wait_for_states(
                ingress,
                kafka_bootstrap,
                lambda states: all(
                    call in states and states[call].status == "completed" for call in calls
                ),
            )
            # A call first seen ringing or answered is live until its tombstone.
            were_live = {call for call, order in calls.items() if order[0] in (0, 1)}
            live = await wait_for_records(
                kafka_bootstrap,
                ingress.topics[LIVE_CALLS],
                lambda records: {r.key.decode() for r in records if r.value is None} >= were_live,
            )
            call_states = await read_topic(kafka_bootstrap, ingress.topics[CALL_STATE], expect=1)
    assert {r.key.decode() for r in live if r.value is None} >= were_live
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
    assert Counter(record.key.decode() for record in completed) == Counter(list(calls))
    truth = normalised(expected_state(call_events("truth")))
    for call_id in calls:
        assert normalised(states[call_id]) == truth, call_id
        assert states[call_id].revision == 1


# RocksDB: the second worker reopens the first one's store, written without RocksDB's WAL, and
# recovers from the changelog what the kill lost.
@pytest.mark.parametrize("store", ["memory", "rocksdb"])
async def test_sigkill_mid_stream_recovers_the_table_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, store: str
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    worker = {"store": store, "data_dir": tmp_path / "worker-data"}
    calls = [f"kill-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(30)]
    app_id = f"{settings.topic_prefix}worker"
    async with running_ingress(settings) as ingress:
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, name="first", **worker
        ) as first:
            # Every call rings and is answered; the first ten also end, with their CDR.
            await asyncio.gather(
                *(
                    post_all(ingress, call_events(call)[: 4 if i < 10 else 2])
                    for i, call in enumerate(calls)
                )
            )
            await wait_for_states(ingress, kafka_bootstrap, lambda s: set(calls) <= set(s))
            first.kill()
        # The rest arrives while no worker runs; the next one must recover the table first.
        await asyncio.gather(*(post_all(ingress, call_events(call)[2:]) for call in calls[10:]))
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, name="second", **worker
        ):
            states, completed = await wait_all_completed(ingress, kafka_bootstrap, calls)
    truth = normalised(expected_state(call_events("truth")))
    assert {call: normalised(states[call]) for call in calls} == dict.fromkeys(calls, truth)
    assert Counter(record.key.decode() for record in completed) == Counter(calls)
