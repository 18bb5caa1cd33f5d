"""The simulator's traffic through a real pipeline, and the check of what the pipeline says
against the truth (tests/simulated_truth.py): shared by the end-to-end test and the
reliability tests that kill its processes."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
from aiokafka.structs import ConsumerRecord

from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.topics import CALLS_COMPLETED, topic_names
from callstream.traffic.plan import FaultRates
from callstream.traffic.simulation import Simulation, call_plans
from callstream.traffic.truth import truth_record
from tests.callstate_truth import latest_completed
from tests.integration.ingress_support import ingress_process
from tests.integration.metrics_support import SLA_S, WINDOWS, ZONE, api_windows, latest_windows
from tests.integration.worker_support import worker_process
from tests.kafka_support import read_until
from tests.metrics_truth import expected_windows, window_mismatches
from tests.simulated_truth import checked, completed_mismatches, expected_completed

EVERY_FAULT = FaultRates(
    duplicate=0.05, reorder=0.08, missing_cdr=0.04, missing_live=0.04, corrected_cdr=0.05
)
FAST_TIMER = {"CALLSTREAM_CDR_TIMEOUT_S": "3"}
SAMPLED = 60  # calls asked for through /calls/{call_id} (all of them when fewer)


@dataclass(frozen=True)
class Simulated:
    truth: list[dict[str, object]]
    completed: dict[str, CompletedCall]  # what calls-completed must end with
    windows: dict[str, dict[str, object]]


def simulated_truth(simulation: Simulation, *, lines: bool = True) -> Simulated:
    """What the pipeline must end with for ``simulation``'s traffic, from its truth alone;
    ``lines=False`` keeps no truth line (``truth`` empty): the soak's hundreds of thousands of
    calls would hold a dict each."""
    truth: list[dict[str, object]] = []
    completed: dict[str, CompletedCall] = {}
    for plan in call_plans(simulation):
        line = truth_record(plan)
        if lines:
            truth.append(line)
        if (call := expected_completed(line)) is not None:
            completed[call.call_id] = call
    windows = expected_windows(list(completed.values()), WINDOWS, ZONE, SLA_S)
    return Simulated(truth, completed, windows)


@dataclass(frozen=True)
class Pipeline:
    bootstrap: str
    prefix: str
    ingress_url: str
    worker_url: str


@asynccontextmanager
async def running_ingress_process(bootstrap: str, tmp: Path, name: str) -> AsyncIterator[Pipeline]:
    """An ingress process on topics of its own; ``worker_url`` is empty: the caller runs the
    workers."""
    prefix = f"{name}{uuid.uuid4().hex[:8]}."
    async with ingress_process(
        os.environ, bootstrap, prefix, tmp / f"{name}-ingress.log"
    ) as ingress:
        yield Pipeline(bootstrap, prefix, f"{ingress.url}/webhooks/omicall", "")


@asynccontextmanager
async def running_pipeline(bootstrap: str, tmp: Path, name: str) -> AsyncIterator[Pipeline]:
    """An ingress process and a worker on topics of their own."""
    async with running_ingress_process(bootstrap, tmp, name) as pipeline:
        with worker_process(
            bootstrap, pipeline.prefix, tmp, name=name, extra_env=FAST_TIMER
        ) as worker:
            yield Pipeline(bootstrap, pipeline.prefix, pipeline.ingress_url, worker.url)


async def check_against_truth(
    pipeline: Pipeline, simulated: Simulated, deadline_s: float = 180
) -> list[ConsumerRecord]:
    """calls-completed, a sample of /calls/{call_id}, callstream.metrics and /metrics/... all
    equal the truth's; waits for the two topics side by side (raising at their deadlines:
    calls-completed's at ``deadline_s``, the windows' 30 s later, as they follow the calls).
    Returns what calls-completed held."""
    names = topic_names(pipeline.prefix)

    def completed_lack(records: list[ConsumerRecord]) -> str | None:
        return completed_mismatches(
            simulated.completed, latest_completed(record.value for record in records)
        )

    def windows_lack(records: list[ConsumerRecord]) -> str | None:
        return window_mismatches(simulated.windows, latest_windows(records))

    reads = [
        asyncio.ensure_future(
            read_until(pipeline.bootstrap, topic, lack, deadline_s=deadline, settle_s=2)
        )
        for topic, lack, deadline in (
            (names[CALLS_COMPLETED], completed_lack, deadline_s),
            (names["callstream.metrics"], windows_lack, deadline_s + 30),
        )
    ]
    try:
        completed, metrics = await asyncio.gather(*reads)
    finally:  # the other read, when one failed
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
    # Nor after the 2 s read on.
    assert completed_lack(completed) is None
    assert windows_lack(metrics) is None
    await check_served(pipeline, simulated)
    return completed


async def check_served(pipeline: Pipeline, simulated: Simulated) -> None:
    """The worker's query API agrees with the truth: every window from ``/metrics/...``, and
    ``/calls/{call_id}`` for a sample of the calls."""
    served = await api_windows(pipeline.worker_url, simulated.windows)
    assert window_mismatches(simulated.windows, served) is None
    sample = random.Random(7).sample(
        sorted(simulated.completed), min(SAMPLED, len(simulated.completed))
    )
    async with aiohttp.ClientSession() as session:
        for call_id in sample:
            async with session.get(f"{pipeline.worker_url}/calls/{call_id}") as got:
                assert got.status == 200, await got.text()
                state = msgspec.json.decode(await got.read(), type=CallState)
            assert state.status == "completed"
            want = checked(simulated.completed[call_id])
            assert (state.outcome, state.talk_sec, state.cost, state.hotline) == (
                want["outcome"],
                want["talk_seconds"],
                want["price"],
                want["hotline"],
            )
