"""The whole pipeline against the simulator's ground truth: 2,000 simulated calls with every
delivery fault on, posted to a real ingress, folded by a real worker; then the same traffic
captured from Kafka and replayed into a fresh pipeline. Each time, the highest revision of every
call on ``callstream.calls-completed``, ``/calls/{call_id}`` for a sample, and every metric
window (on ``callstream.metrics`` and from ``/metrics/{dimension}``) equal what
tests/simulated_truth.py computes from the truth alone."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiokafka.structs import ConsumerRecord

from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.topics import CALLS_COMPLETED, topic_names
from callstream.traffic.plan import FaultRates, merged
from callstream.traffic.poster import PostSettings, post_deliveries
from callstream.traffic.simulation import Simulation, call_plans
from callstream.traffic.truth import truth_record
from tests.callstate_truth import latest_completed
from tests.integration.cli_helpers import callstream
from tests.integration.ingress_support import TOKEN, ingress_process
from tests.integration.metrics_support import SLA_S, WINDOWS, ZONE, api_windows, latest_windows
from tests.integration.worker_support import worker_process
from tests.kafka_support import read_until
from tests.metrics_truth import expected_windows, window_mismatches
from tests.simulated_truth import checked, completed_mismatches, expected_completed

CALLS = 2000
RATE = 20.0  # calls a second on the traffic's clock: 100 s of arrivals, sent as fast as acked
EVERY_FAULT = FaultRates(
    duplicate=0.05, reorder=0.08, missing_cdr=0.04, missing_live=0.04, corrected_cdr=0.05
)
FAST_TIMER = {"CALLSTREAM_CDR_TIMEOUT_S": "3"}
SAMPLED = 60  # calls asked for through /calls/{call_id}


@dataclass(frozen=True)
class Simulated:
    truth: list[dict[str, object]]
    completed: dict[str, CompletedCall]  # what calls-completed must end with
    windows: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    now = int(time.time())
    return Simulation(
        calls=CALLS, start_s=now - int(CALLS / RATE), rate=RATE, seed=2026, faults=EVERY_FAULT
    )


@pytest.fixture(scope="module")
def simulated(simulation: Simulation) -> Simulated:
    truth = [truth_record(plan) for plan in call_plans(simulation)]
    completed = {call.call_id: call for call in map(expected_completed, truth) if call is not None}
    windows = expected_windows(list(completed.values()), WINDOWS, ZONE, SLA_S)
    return Simulated(truth, completed, windows)


@dataclass(frozen=True)
class Pipeline:
    bootstrap: str
    prefix: str
    ingress_url: str
    worker_url: str


@asynccontextmanager
async def running_pipeline(bootstrap: str, tmp: Path, name: str) -> AsyncIterator[Pipeline]:
    """An ingress process and a worker on topics of their own."""
    prefix = f"{name}{uuid.uuid4().hex[:8]}."
    async with ingress_process(
        os.environ, bootstrap, prefix, tmp / f"{name}-ingress.log"
    ) as ingress:
        with worker_process(bootstrap, prefix, tmp, name=name, extra_env=FAST_TIMER) as worker:
            yield Pipeline(
                bootstrap,
                prefix,
                f"{ingress.url}/webhooks/omicall",
                f"http://127.0.0.1:{worker.web_port}",
            )


async def check_against_truth(pipeline: Pipeline, simulated: Simulated) -> None:
    """calls-completed, a sample of /calls/{call_id}, callstream.metrics and /metrics/... all
    equal the truth's; waits for the first two (raising at their deadlines)."""
    names = topic_names(pipeline.prefix)

    def completed_lack(records: list[ConsumerRecord]) -> str | None:
        return completed_mismatches(
            simulated.completed, latest_completed(record.value for record in records)
        )

    await read_until(
        pipeline.bootstrap, names[CALLS_COMPLETED], completed_lack, deadline_s=180, settle_s=2
    )

    def windows_lack(records: list[ConsumerRecord]) -> str | None:
        return window_mismatches(simulated.windows, latest_windows(records))

    await read_until(
        pipeline.bootstrap, names["callstream.metrics"], windows_lack, deadline_s=90, settle_s=2
    )
    served = await api_windows(pipeline.worker_url, simulated.windows)
    assert window_mismatches(simulated.windows, served) is None
    sample = random.Random(7).sample(sorted(simulated.completed), SAMPLED)
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


async def test_simulated_calls_with_every_fault_end_as_the_truth_says_also_when_replayed(
    kafka_bootstrap: str, tmp_path: Path, simulation: Simulation, simulated: Simulated
) -> None:
    """The simulator's traffic through one pipeline; then ``capture`` of what its ingress
    published, and ``replay`` of that file into a fresh pipeline: both end as the truth says."""
    faults = {fault for line in simulated.truth for fault in line["faults"]}  # type: ignore[attr-defined]
    assert faults == {
        "duplicate",
        "answered_before_ringing",
        "cdr_before_hangup",
        "missing_cdr",
        "missing_live",
        "corrected_cdr",
    }
    async with running_pipeline(kafka_bootstrap, tmp_path, "sim") as first:
        settings = PostSettings(url=first.ingress_url, token=TOKEN, speed=0, concurrency=32)
        summary = await post_deliveries(merged(call_plans(simulation)), settings)
        assert summary.acked == summary.sent, summary
        await check_against_truth(first, simulated)
    recording = tmp_path / "recorded.jsonl"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    captured = await asyncio.to_thread(
        callstream,
        *("capture", "--topic", "omicall.call-events,omicall.cdrs", "--out", str(recording)),
        env={**env, "CALLSTREAM_TOPIC_PREFIX": first.prefix},
    )
    assert captured.code == 0, captured.stderr
    assert len(recording.read_bytes().splitlines()) == summary.acked
    async with running_pipeline(kafka_bootstrap, tmp_path, "replayed") as second:
        replayed = await asyncio.to_thread(
            callstream,
            *("replay", str(recording), "--url", second.ingress_url, "--token", TOKEN),
            *("--speed", "0", "--concurrency", "32"),
            env=env,
        )
        assert replayed.code == 0, replayed.stderr
        await check_against_truth(second, simulated)
