"""The worker's timers, bad input records, and two workers sharing one group."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.topics import CALL_EVENTS, CALLS_COMPLETED, REJECTED
from tests.callstate_truth import folded
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.worker_support import (
    call_events,
    post_all,
    wait_all_completed,
    wait_for_states,
    worker_process,
)
from tests.kafka_support import read_topic, read_until


async def test_a_call_without_cdr_completes_on_time_and_its_late_cdr_corrects_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    call = f"late-{uuid.uuid4().hex[:8]}"
    events = call_events(call)
    fast = {"CALLSTREAM_CDR_TIMEOUT_S": "2"}
    async with running_ingress(settings) as ingress:
        with worker_process(kafka_bootstrap, settings.topic_prefix, tmp_path, extra_env=fast):
            await post_all(ingress, events[:3])  # ringing, answered, hangup; no CDR
            first = await read_topic(
                kafka_bootstrap, ingress.topics[CALLS_COMPLETED], expect=1, deadline_s=60
            )
            await post_all(ingress, events[3:])  # the CDR, late
            both = await read_topic(
                kafka_bootstrap, ingress.topics[CALLS_COMPLETED], expect=2, deadline_s=60
            )
            states = await wait_for_states(ingress, kafka_bootstrap, {call: folded(events)})
    timed_out = msgspec.json.decode(first[0].value, type=CompletedCall)
    # Revisions count the events each record folds: three live events, then the CDR too.
    assert (timed_out.revision, timed_out.cdr_missing, timed_out.outcome) == (3, True, "answered")
    corrected = msgspec.json.decode(both[-1].value, type=CompletedCall)
    assert (corrected.revision, corrected.cdr_missing, corrected.price) == (4, False, 55.002)
    assert states[call].revision == 4


async def test_a_call_left_open_by_one_worker_is_timed_out_by_the_next(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The next worker recovers the open call from the changelog, past its agent: the timer's
    set of open calls must come from a scan of the recovered table. The call is not yet due at
    that first scan (the second worker is ready within 15 s), so only that set can expire it."""
    settings = ingress_settings(kafka_bootstrap)
    call = f"open-{uuid.uuid4().hex[:8]}"
    app_id = f"{settings.topic_prefix}worker"
    async with running_ingress(settings) as ingress:
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, name="first"
        ):
            ended = call_events(call)[:3]  # its CDR never comes
            await post_all(ingress, ended)
            await wait_for_states(ingress, kafka_bootstrap, {call: folded(ended)})
        fast = {"CALLSTREAM_CDR_TIMEOUT_S": "15"}
        with worker_process(
            kafka_bootstrap,
            settings.topic_prefix,
            tmp_path,
            app_id=app_id,
            name="second",
            extra_env=fast,
        ):
            completed = await read_topic(
                kafka_bootstrap, ingress.topics[CALLS_COMPLETED], expect=1, deadline_s=60
            )
    assert [record.key.decode() for record in completed] == [call]
    assert msgspec.json.decode(completed[0].value, type=CompletedCall).cdr_missing


async def test_a_completed_call_leaves_the_table_after_its_retention(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    call = f"evict-{uuid.uuid4().hex[:8]}"
    app_id = f"{settings.topic_prefix}worker"
    short = {"CALLSTREAM_RETENTION_S": "2"}
    async with running_ingress(settings) as ingress:
        with worker_process(
            kafka_bootstrap, settings.topic_prefix, tmp_path, app_id=app_id, extra_env=short
        ):
            await post_all(ingress, call_events(call))
            changelog = f"{app_id}-call-state-changelog"

            def values(records: list[ConsumerRecord]) -> list[bytes | None]:
                return [record.value for record in records if record.key == call.encode()]

            def no_tombstone(records: list[ConsumerRecord]) -> str | None:
                last = values(records)[-1:]
                return None if last == [None] else f"last value of {call}: {last}, no tombstone"

            # The table's changelog: the state, then its tombstone.
            records = await read_until(kafka_bootstrap, changelog, no_tombstone, deadline_s=60)
            mine = values(records)
    assert mine[-1] is None
    assert mine[-2] is not None
    assert msgspec.json.decode(mine[-2], type=CallState).status == "completed"


async def test_a_bad_record_on_an_input_topic_goes_to_rejected_and_the_agent_goes_on(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    call = f"after-bad-{uuid.uuid4().hex[:8]}"
    async with running_ingress(settings) as ingress:
        with worker_process(kafka_bootstrap, settings.topic_prefix, tmp_path):
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:  # written straight to the topic, past the ingress, as a buggy producer would
                await producer.send_and_wait(
                    ingress.topics[CALL_EVENTS], b'{"state": "ringing"', key=call.encode()
                )
            finally:
                await producer.stop()
            await post_all(ingress, call_events(call))
            rejected = await read_topic(kafka_bootstrap, ingress.topics[REJECTED], expect=1)
            await wait_for_states(ingress, kafka_bootstrap, {call: folded(call_events(call))})
    assert [msgspec.json.decode(r.value)["code"] for r in rejected] == ["invalid_json"]


# Worker a recovers twice (b joins, b leaves); what reaches a partition with nothing committed yet
# while it recovers is fetched and dropped by faust, and was lost until processors/transport.py.
async def test_two_workers_share_the_partitions_and_one_leaving_loses_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    app_id = f"{settings.topic_prefix}worker"
    calls = [f"pair-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(24)]
    prefix = settings.topic_prefix
    async with running_ingress(settings) as ingress:
        with worker_process(kafka_bootstrap, prefix, tmp_path, app_id=app_id, name="a"):
            with worker_process(kafka_bootstrap, prefix, tmp_path, app_id=app_id, name="b") as b:
                await asyncio.gather(*(post_all(ingress, call_events(c)[:2]) for c in calls))
                answered = {c: folded(call_events(c)[:2]) for c in calls}
                await wait_for_states(ingress, kafka_bootstrap, answered)
                b.stop()  # a clean leave: its partitions move to worker a
            await asyncio.gather(*(post_all(ingress, call_events(c)[2:]) for c in calls))
            truth = {c: folded(call_events(c)) for c in calls}
            # Each call's revisions once each, the last its true completed call: none doubled.
            await wait_all_completed(ingress, kafka_bootstrap, truth)
