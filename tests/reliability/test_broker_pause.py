"""The broker leading the most input partitions paused (SIGSTOP) for five times the ingress's
send deadline while simulated webhooks arrive: every request is answered 200 or 503 within a
bound, the ingress's memory stays put, and after SIGCONT it serves again without a restart
(docs/reliability.md, check 4)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.cluster_support import LocalCluster, wait_fully_replicated
from tests.integration.ingress_support import ingress_process
from tests.reliability.load import (
    busiest_leader,
    figures,
    finished,
    input_topics,
    loading,
    process_paused,
    rss_mb,
    simulated,
    stored_as_sent,
)

pytestmark = pytest.mark.reliability

SEND_TIMEOUT_S = 2.0
PAUSE_S = 5 * SEND_TIMEOUT_S
ANSWER_BOUND_S = SEND_TIMEOUT_S + 2.0  # the client gives up after this: no answer is a hang
WEBHOOKS, PER_S = 2500, 100.0  # 25 s of load
PAUSE_AFTER_ACKED = 200
RSS_GROWTH_MB = 40.0
SAMPLE_EVERY_S = 0.5


async def test_a_paused_leader_gives_503s_in_bounded_time_and_recovery_without_restart(
    kafka_cluster: LocalCluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    began = time.monotonic()
    prefix = f"pause{uuid.uuid4().hex[:8]}."
    run = f"pause-{uuid.uuid4().hex[:6]}"
    deliveries = simulated(WEBHOOKS, run, PER_S)
    env = {**cli_env, "CALLSTREAM_SEND_TIMEOUT": str(SEND_TIMEOUT_S)}
    log = tmp_path / "ingress.log"
    post = {"concurrency": 256, "max_attempts": 1, "timeout_s": ANSWER_BOUND_S}
    readiness: list[tuple[float, int | None]] = []  # (seconds into the pause, /readyz status)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        async with (
            ingress_process(env, kafka_cluster.bootstrap, prefix, log) as ingress,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http,
        ):
            pid = ingress.process.pid
            node, _led = await busiest_leader(admin, prefix)

            async def readyz() -> int | None:
                try:
                    async with http.get(f"{ingress.url}/readyz") as response:
                        return response.status
                except (aiohttp.ClientError, TimeoutError):
                    return None

            async with loading(ingress, deliveries, **post) as (load, task):
                await load.until_acked(PAUSE_AFTER_ACKED)
                rss_before = rss_mb(pid)
                rss_peak = rss_before
                with process_paused(kafka_cluster.node_pid(node)):
                    paused_at = time.monotonic()
                    # The fault's length is the point here, not a condition: sample meanwhile.
                    while (into := time.monotonic() - paused_at) < PAUSE_S:
                        readiness.append((round(into, 1), await readyz()))
                        rss_peak = max(rss_peak, rss_mb(pid))
                        await asyncio.sleep(SAMPLE_EVERY_S)
                resumed_at = time.monotonic()
                summary = await finished(task, 90)
                rss_peak = max(rss_peak, rss_mb(pid))
            during = [o for o in load.outcomes.values() if paused_at <= o.at <= resumed_at]

            # Recovery, same process: the resumed node back in sync, then a second load all 200.
            await wait_fully_replicated(admin, input_topics(prefix))
            after = simulated(300, f"{run}-after")
            async with loading(ingress, after, **post) as (again, again_task):
                after_summary = await finished(again_task, 60)
            ready_after = await readyz()
            assert ingress.process.returncode is None
        stored = await stored_as_sent(kafka_cluster.bootstrap, prefix, load, again)
    finally:
        await admin.close()

    statuses = load.statuses()
    refused_s = sorted(load.answer_s(rid) for rid, o in load.outcomes.items() if o.status == 503)
    # 503s per second from the pause's start to 5 s after its end, by when they were answered.
    seconds = int(PAUSE_S) + 5
    per_second = [0] * seconds
    for outcome in load.outcomes.values():
        second = int(outcome.at - paused_at)
        if outcome.status == 503 and 0 <= second < seconds:
            per_second[second] += 1
    figures(
        "broker pause",
        webhooks=summary.sent,
        acked=summary.acked,
        status_503=statuses.get(503, 0),
        no_answer=statuses.get(None, 0),
        answered_during_pause=len(during),
        status_503_during_pause=sum(1 for o in during if o.status == 503),
        rss_before_mb=round(rss_before, 1),
        rss_peak_mb=round(rss_peak, 1),
        status_503_by_second=per_second,
        status_503_answer_s=f"median {refused_s[len(refused_s) // 2]:.2f} max {refused_s[-1]:.2f}",
        readyz_during_pause=[status for _at, status in readiness],
        after_acked=f"{after_summary.acked}/{after_summary.sent}",
        records=stored.records,
        unacked_stored=stored.unacked,
        took_s=round(time.monotonic() - began, 1),
    )
    # Every request answered within the bound (no answer would mean a hang), 200 or 503.
    assert set(statuses) <= {200, 503}, statuses
    assert (summary.sent, len(load.outcomes)) == (WEBHOOKS, WEBHOOKS)
    assert any(o.status == 503 for o in during), "the pause was never felt"
    assert refused_s[-1] < SEND_TIMEOUT_S + 1.5
    # /readyz says whether the cluster answers (a metadata request, or an ack, within 10 s):
    # with two of three brokers up it does, so the ingress stays ready through the pause.
    assert {status for _at, status in readiness} == {200}
    assert rss_peak - rss_before < RSS_GROWTH_MB
    assert (after_summary.acked, ready_after) == (len(after), 200)
