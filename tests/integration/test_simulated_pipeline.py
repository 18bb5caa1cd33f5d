"""The whole pipeline against the simulator's ground truth: 2,000 simulated calls with every
delivery fault on, posted to a real ingress, folded by a real worker; then the same traffic
captured from Kafka and replayed into a fresh pipeline. Each time, the highest revision of every
call on ``callstream.calls-completed``, ``/calls/{call_id}`` for a sample, and every metric
window (on ``callstream.metrics`` and from ``/metrics/{dimension}``) equal what
tests/simulated_truth.py computes from the truth alone. The first pipeline's topics are also
exported (``callstream export``) and README's analysts' queries run over the export
(tests/integration/export_support.py)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from callstream.traffic.plan import merged
from callstream.traffic.poster import PostSettings, post_deliveries
from callstream.traffic.simulation import Simulation, call_plans
from tests.integration.cli_helpers import callstream
from tests.integration.export_support import check_export_against_truth
from tests.integration.ingress_support import TOKEN
from tests.integration.simulated_support import (
    EVERY_FAULT,
    Simulated,
    check_against_truth,
    running_pipeline,
    simulated_truth,
)

CALLS = 2000
RATE = 20.0  # calls a second on the traffic's clock: 100 s of arrivals, sent as fast as acked


@pytest.fixture(scope="module")
def simulation() -> Simulation:
    now = int(time.time())
    return Simulation(
        calls=CALLS, start_s=now - int(CALLS / RATE), rate=RATE, seed=2026, faults=EVERY_FAULT
    )


@pytest.fixture(scope="module")
def simulated(simulation: Simulation) -> Simulated:
    return simulated_truth(simulation)


async def test_simulated_calls_with_every_fault_end_as_the_truth_says_also_when_replayed(
    kafka_bootstrap: str, tmp_path: Path, simulation: Simulation, simulated: Simulated
) -> None:
    """The simulator's traffic through one pipeline, and its export; then ``capture`` of what
    its ingress published, and ``replay`` of that file into a fresh pipeline: all as the truth
    says."""
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
        await check_export_against_truth(first, simulated, simulation.start_s * 1000, tmp_path)
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
