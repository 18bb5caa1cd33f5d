"""The worker SIGKILLed mid-stream on the three-node cluster: issue #15's worker kill bounded
enough for `make test` (marker ``failover``); tests/reliability/test_worker_kills.py is the long
run (3,000 simulated calls, three kills under load; marker ``reliability``).

Generated calls of every kind the metrics count (tests/integration/metrics_support.py: answered,
abandoned, missed, from a CDR alone, a corrected CDR that moves the call to another hotline, no
CDR, completed by the timer then corrected by its late CDR), posted in any order with duplicates.
The worker (RocksDB store kept, as in production) is SIGKILLed once it has the first half, while
the second half arrives; the rest of it arrives while none runs; the next worker, on the same
store, processes again what was not committed. Then, checked as the simulator's runs are
(``check_against_truth``): the highest revision of every call on calls-completed, every window
on callstream.metrics and ``/metrics/...``, and ``/calls/{call_id}`` equal the brute force over
the pure fold's final calls (tests/metrics_truth.py): no call lost or counted twice. It ran on
one broker before, in tests/integration/test_worker_call_metrics.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster_support import LocalCluster
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.metrics_support import deliveries, generate_calls, truth, wait_timed_out
from tests.integration.simulated_support import (
    FAST_TIMER,
    Pipeline,
    Simulated,
    check_against_truth,
)
from tests.integration.worker_support import post_all
from tests.reliability.load import figures
from tests.reliability.worker_kills_support import WorkerSpec, records_folded

# Bounded, as `make test` runs it; its waits raise before the bound (the drain's at 60 s).
pytestmark = [pytest.mark.failover, pytest.mark.timeout(180)]

CALLS = 42  # six of each of the seven kinds


async def test_metrics_stay_exact_when_the_worker_is_killed_mid_stream(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    began = time.monotonic()
    bootstrap = kafka_cluster.bootstrap
    settings = ingress_settings(bootstrap)
    prefix = settings.topic_prefix
    calls = generate_calls(f"k-{uuid.uuid4().hex[:6]}", CALLS, int(time.time() * 1000), seed=11)
    bodies, late = deliveries(calls, seed=3), deliveries(calls, seed=4, late=True)
    half = len(bodies) // 2
    # One worker name: the restarted worker opens the killed one's RocksDB store.
    spec = WorkerSpec(bootstrap, prefix, tmp_path, f"{prefix}worker", "killed", FAST_TIMER)
    async with running_ingress(settings) as ingress:
        worker = await spec.start()
        try:
            await post_all(ingress, bodies[:half])
            # The second half arrives while the worker folds, is killed, and none runs.
            rest = asyncio.create_task(post_all(ingress, bodies[half:]))
            try:
                folded_at_kill = await records_folded(worker)
                await asyncio.to_thread(worker.kill)
                await rest
            finally:
                rest.cancel()
            restarted = time.monotonic()
            worker = await spec.start()
            ready_s = time.monotonic() - restarted
            await wait_timed_out(ingress, bootstrap, calls)
            await post_all(ingress, late)
            expected = Simulated([], {call.call_id: call.final() for call in calls}, truth(calls))
            pipeline = Pipeline(bootstrap, prefix, "", worker.url)
            completed = await check_against_truth(pipeline, expected, deadline_s=60)
        finally:
            await asyncio.to_thread(worker.stop)
    figures(
        "worker kill",
        calls=CALLS,
        webhooks=len(bodies) + len(late),
        posted_before_kill=half,
        folded_at_kill=int(folded_at_kill),
        restart_ready_s=round(ready_s, 1),
        completed_records=len(completed),
        windows=len(expected.windows),
        took_s=round(time.monotonic() - began, 1),
    )
