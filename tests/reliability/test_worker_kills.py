"""Issue #15, check 2, on the three-node cluster: while the simulator posts every fault of its
traffic, the worker is SIGKILLed three times at random moments and restarted; and, in another
run, a second worker of the same group joins mid-run and leaves (SIGTERM). After the traffic
ends and the pipeline drains, calls-completed's highest revisions, a sample of
``/calls/{call_id}``, callstream.metrics and ``/metrics/...`` equal the simulator's truth
exactly (tests/integration/simulated_support.py).

The moments are counts of acknowledged webhooks drawn from a seeded rng: the seed is logged and
``CALLSTREAM_FAULT_SEED`` replays it."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord

from callstream.traffic.plan import merged
from callstream.traffic.poster import PostSettings, PostSummary, post_deliveries
from callstream.traffic.simulation import Simulation, call_plans
from tests.cluster_support import LocalCluster
from tests.integration.ingress_support import TOKEN
from tests.integration.simulated_support import (
    EVERY_FAULT,
    FAST_TIMER,
    Pipeline,
    running_ingress_process,
    simulated_truth,
)
from tests.integration.worker_support import Worker
from tests.reliability.worker_kills_support import (
    AckCounter,
    WorkerSpec,
    ends_as_the_truth_says,
    paced,
    records_folded,
    revision_faults,
)

# A failure takes the 120 s drain deadline and a read of every difference: above the default.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(400)]
log = logging.getLogger(__name__)

CALLS = 3000
RATE = 20.0  # calls a second on the traffic's clock: 150 s of arrivals
PER_S = 120.0  # webhooks a second, in the traffic's order: 95 s of them, the faults inside
STEP_S = 120.0  # the longest any one step (a restart, a count of acks) may take


@pytest.fixture
def seed() -> int:
    """The faults' seed: ``CALLSTREAM_FAULT_SEED``, else a new one each run (logged)."""
    chosen = int(os.environ.get("CALLSTREAM_FAULT_SEED") or random.randrange(2**31))
    log.warning("fault seed %d (CALLSTREAM_FAULT_SEED=%d replays it)", chosen, chosen)
    return chosen


@pytest.fixture
def simulation() -> Simulation:
    """The traffic: its calls are drawn from its seed and its start (logged), new each run."""
    start_s = int(time.time()) - int(CALLS / RATE)
    log.warning("simulation seed 2026, start_s %d", start_s)
    return Simulation(calls=CALLS, start_s=start_s, rate=RATE, seed=2026, faults=EVERY_FAULT)


def group(pipeline: Pipeline, tmp: Path, name: str) -> WorkerSpec:
    """A worker of the pipeline's one consumer group, with a RocksDB store of its own."""
    return WorkerSpec(
        pipeline.bootstrap, pipeline.prefix, tmp, f"{pipeline.prefix}worker", name, FAST_TIMER
    )


async def post_traffic(
    pipeline: Pipeline, simulation: Simulation, counter: AckCounter
) -> PostSummary:
    settings = PostSettings(url=pipeline.ingress_url, token=TOKEN, speed=1, concurrency=32)
    try:
        summary = await post_deliveries(
            paced(merged(call_plans(simulation)), PER_S), settings, on_result=counter.on_result
        )
    finally:
        counter.ended()
    assert not summary.interrupted, summary
    assert summary.acked == summary.sent, summary
    return summary


def report_revisions(completed: list[ConsumerRecord]) -> None:
    """Revisions on calls-completed more than once (not part of the truth's check)."""
    faults = revision_faults(record.value for record in completed)
    log.warning(
        "%d calls-completed records, %d calls with a revision more than once: %s",
        *(len(completed), len(faults), sorted(faults.items())[:10]),
    )


def deliveries(simulation: Simulation) -> int:
    return sum(1 for _ in merged(call_plans(simulation)))


# A worker killed mid-flush can still lose or double an output. Before main's 0fae921 (one
# produce request per leader, README "The worker"): 2 of 6 runs failed, 2 calls missing from
# calls-completed in one, 3 calls counted twice in 42 metric windows in another. On main with
# 0fae921 (outputs before changelogs; the gap left is the call-state and metric-shares
# changelogs, docs/architecture.md): 1 of 2 runs failed, one call's live_missing stale in 16
# windows. Strict once that gap is closed.
async def drained_as_the_truth_says(
    pipeline: Pipeline, worker: Worker, simulation: Simulation, tmp: Path, started: float
) -> None:
    """Once the traffic is posted: until the pipeline, read through ``worker``, equals the
    truth (raises at the deadline with every difference in ``tmp/differences.txt``)."""
    drained = time.monotonic()
    completed = await ends_as_the_truth_says(
        replace(pipeline, worker_url=worker.url),
        simulated_truth(simulation),
        tmp / "differences.txt",
    )
    report_revisions(completed)
    log.warning(
        "posted in %.1f s, equal to the truth %.1f s after",
        drained - started,
        time.monotonic() - drained,
    )


async def test_worker_sigkilled_three_times_under_load_ends_as_the_truth_says(
    kafka_cluster: LocalCluster, tmp_path: Path, simulation: Simulation, seed: int
) -> None:
    rng = random.Random(seed)
    total = deliveries(simulation)
    # The first kill somewhere in the first fifth of the traffic; each next one some acks after
    # its worker is ready (a restart takes 10-20 s here), so that every kill hits a worker
    # catching up on what came in while none ran.
    moments = [int(total * rng.uniform(0.02, 0.2)), *(rng.randrange(50, 600) for _ in range(2))]
    counter = AckCounter()
    started = time.monotonic()
    async with running_ingress_process(kafka_cluster.bootstrap, tmp_path, "kills") as pipeline:
        spec = group(pipeline, tmp_path, "killed")
        worker = await spec.start()
        posting = asyncio.create_task(post_traffic(pipeline, simulation, counter))
        kills: list[str] = []
        try:
            for index, moment in enumerate(moments):
                await counter.reached(moment if index == 0 else counter.acked + moment, STEP_S)
                worker.kill()
                kills.append(f"{counter.acked} acked at {time.monotonic() - started:.1f} s")
                worker = await spec.start()
            assert not posting.done(), f"the traffic ended before the kills: {kills}"
            summary = await posting
            log.warning("%d kills (%s) in %d webhooks: %s", len(kills), kills, total, summary)
            await drained_as_the_truth_says(pipeline, worker, simulation, tmp_path, started)
        finally:
            posting.cancel()
            await asyncio.to_thread(worker.stop)


async def test_a_second_worker_joining_and_leaving_mid_run_ends_as_the_truth_says(
    kafka_cluster: LocalCluster, tmp_path: Path, simulation: Simulation, seed: int
) -> None:
    rng = random.Random(seed)
    total = deliveries(simulation)
    joins, leaves = int(total * rng.uniform(0.1, 0.3)), int(total * rng.uniform(0.55, 0.75))
    counter = AckCounter()
    started = time.monotonic()
    async with running_ingress_process(kafka_cluster.bootstrap, tmp_path, "join") as pipeline:
        first = await group(pipeline, tmp_path, "first").start()
        second: Worker | None = None
        posting = asyncio.create_task(post_traffic(pipeline, simulation, counter))
        try:
            await counter.reached(joins, STEP_S)
            second = await group(pipeline, tmp_path, "second").start()
            joined = counter.acked
            # It takes records over before it leaves: some acks more, then its own count.
            await counter.reached(max(leaves, counter.acked + rng.randrange(200, 600)), STEP_S)
            folded_by_second = await records_folded(second)
            left = counter.acked
            assert await asyncio.to_thread(second.stop) == 0, second.log.read_text()[-3000:]
            assert folded_by_second > 0, "the second worker processed nothing"
            assert not posting.done(), "the traffic ended before the second worker left"
            summary = await posting
            log.warning(
                "second worker from %d to %d acked of %d (%d records folded by it): %s",
                *(joined, left, total, folded_by_second, summary),
            )
            await drained_as_the_truth_says(pipeline, first, simulation, tmp_path, started)
        finally:
            posting.cancel()
            if second is not None:
                await asyncio.to_thread(second.stop)
            await asyncio.to_thread(first.stop)
