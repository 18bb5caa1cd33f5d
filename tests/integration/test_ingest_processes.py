"""`callstream ingest` with CALLSTREAM_INGEST_PROCESSES=2: both processes serve the one port, a
scrape of /metrics shows both processes' figures summed whichever one answers, SIGTERM stops
both (exit 0), and one process dying stops the other (exit 1) rather than leaving the port at
half its capacity unnoticed."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.ingress_support import JSON, TOKEN, IngressProcess, ingress_process, sample
from tests.integration.ingress_support import wait_until as wait_for_condition
from tests.kafka_support import wait_while_lacking
from tests.promtool import assert_promtool_passes

WEBHOOKS = 20
SCRAPES = 5
ROUTE = "/webhooks/omicall/{token}"
SUPERVISOR_BYTES = 30_000_000  # it imports neither aiohttp nor aiokafka (ingest/processes.py)


async def post_each_on_its_own_connection(ingress: IngressProcess, count: int) -> None:
    """The kernel spreads connections, not requests, over the processes."""
    body = sample("event-ringing.json")
    for _ in range(count):
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{ingress.url}/webhooks/omicall/{TOKEN}", data=body, headers=JSON
            ) as answer,
        ):
            assert answer.status == 200, await answer.text()


async def scrape(ingress: IngressProcess) -> tuple[bytes, dict[str, dict[str, float]]]:
    """The exposition, and its samples by name and labels (``k=v,...``)."""
    async with aiohttp.ClientSession() as session, session.get(f"{ingress.url}/metrics") as got:
        assert got.status == 200
        body = await got.read()
    samples: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for found in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(found.labels.items()))
            samples.setdefault(found.name, {})[labels] = found.value
    return body, samples


def env(cli_env: dict[str, str]) -> dict[str, str]:
    return {**cli_env, "CALLSTREAM_INGEST_PROCESSES": "2"}


async def serving_pids(ingress: IngressProcess, deadline_s: float = 30) -> list[int]:
    """The two serving processes' pids, once a scrape names both: the ingress answers as soon
    as the first is up, and a process is in the scrape only once it has written a metric.
    Raises at the deadline."""
    pids: list[int] = []

    async def lacking() -> str | None:
        nonlocal pids
        _, samples = await scrape(ingress)
        memory = samples.get("process_resident_memory_bytes", {})
        pids = [int(labels.removeprefix("pid=")) for labels in memory]
        return None if len(pids) == 2 else f"processes in the scrape: {pids}"

    await wait_while_lacking(lacking, "both serving processes in a scrape", deadline_s)
    return pids


def resident_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_a_scrape_sums_both_processes_and_sigterm_stops_both(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    prefix = f"procs{uuid.uuid4().hex[:8]}."
    log = tmp_path / "ingress.log"
    async with ingress_process(env(cli_env), kafka_bootstrap, prefix, log) as ingress:
        await serving_pids(ingress)
        await post_each_on_its_own_connection(ingress, WEBHOOKS)
        pids: set[str] = set()
        for attempt in range(SCRAPES):  # each on a new connection: either process may answer
            body, samples = await scrape(ingress)
            requests = samples["callstream_ingress_requests_total"]
            assert requests[f"route={ROUTE},status=200"] == WEBHOOKS, requests
            published = samples["callstream_ingress_published_records_total"]
            assert sum(published.values()) == WEBHOOKS, published
            assert samples["callstream_ingress_ready"] == {"": 1.0}  # both processes ready
            memory = samples["process_resident_memory_bytes"]
            assert all(value > 10_000_000 for value in memory.values()), memory
            pids |= {labels.removeprefix("pid=") for labels in memory}
            if attempt == 0:
                await assert_promtool_passes(body)
        assert len(pids) == 2, pids  # two serving processes, neither the supervisor
        assert str(ingress.process.pid) not in pids
        assert resident_bytes(ingress.process.pid) < SUPERVISOR_BYTES
        ingress.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(ingress.process.wait(), 30)
    assert code == 0, log.read_text()[-2000:]
    await wait_for_condition(
        lambda: not any(alive(int(pid)) for pid in pids), "both processes exited", 10
    )


async def test_one_process_dying_stops_the_other_and_the_ingress_fails(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    prefix = f"procs{uuid.uuid4().hex[:8]}."
    log = tmp_path / "ingress.log"
    async with ingress_process(env(cli_env), kafka_bootstrap, prefix, log) as ingress:
        pids = await serving_pids(ingress)
        os.kill(pids[0], signal.SIGKILL)
        code = await asyncio.wait_for(ingress.process.wait(), 30)
    assert code == 1
    await wait_for_condition(lambda: not alive(pids[1]), "the other process exited", 10)
    assert f"ingress process {pids[0]} exited with code -9" in log.read_text()
