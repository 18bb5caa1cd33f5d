"""The worker's /metrics after it folded a few real records: what it counted, its lag, rows."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiokafka import AIOKafkaProducer

from callstream.schemas.topics import CALL_EVENTS, CDRS, topic
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.worker_support import call_events, post_all, worker_process
from tests.unit.test_worker_metrics import samples

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape_until(
    url: str, done: Callable[[Samples], str | None], deadline_s: float = 60
) -> Samples:
    """The samples of ``url`` once ``done`` finds nothing missing (it says what is missing);
    raises at the deadline with the last thing missing."""
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(url) as response:
                assert response.status == 200
                found = samples(await response.read())
            missing = done(found)
            if missing is None:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{url}: {missing}")
            await asyncio.sleep(0.1)


def of(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in found.items() if sample == name}


async def test_the_metrics_count_what_the_worker_folded(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingress_settings(kafka_bootstrap)
    call = f"metrics-{uuid.uuid4().hex[:8]}"
    events = call_events(call)
    async with running_ingress(settings) as ingress:
        source, cdrs = ingress.topics[CALL_EVENTS], ingress.topics[CDRS]
        expected = {
            (("outcome", "changed"), ("topic", source)): 3,  # ringing, answered, hangup
            (("outcome", "unchanged"), ("topic", source)): 1,  # ringing again
            (("outcome", "rejected"), ("topic", source)): 1,
            (("outcome", "changed"), ("topic", cdrs)): 1,
        }
        count = topic(CALL_EVENTS).partitions
        partitions = {(("partition", str(p)), ("topic", source)) for p in range(count)}

        def settled(found: Samples) -> str | None:
            folded = of(found, "callstream_worker_events_folded_total")
            if folded != expected:
                return f"folded {folded}"
            lag = of(found, "callstream_worker_consumer_lag")
            if not partitions <= lag.keys() or any(lag[p] for p in partitions):
                return f"lag {lag}"
            # Observed once Kafka acknowledged a flush, after the folds were counted.
            if found.get(("callstream_worker_flush_seconds_count", ()), 0) < 1:
                return "no flush acknowledged yet"
            return None

        with worker_process(kafka_bootstrap, settings.topic_prefix, tmp_path) as worker:
            await post_all(ingress, [*events, events[0]])
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:  # past the ingress, as a buggy producer would
                await producer.send_and_wait(source, b'{"state": "ringing"', key=call.encode())
            finally:
                await producer.stop()
            url = f"http://127.0.0.1:{worker.web_port}/metrics"
            found = await scrape_until(url, settled)
    # The sample call started in 2023: past every window's grace, so left out of the metrics
    # and counted: its four dimension values in each window size, once per change of its
    # completed record (one or more, as the worker happened to read its two topics).
    assert of(found, "callstream_worker_table_rows") == {
        (("table", "call-state"),): 1,
        (("table", "metric-shares"),): 0,
        (("table", "metric-windows"),): 0,
    }
    late = of(found, "callstream_worker_late_dropped_total")
    assert {labels[0][1] for labels in late} == {"1m", "15m", "1h", "1d"}
    assert all(count >= 4 and count % 4 == 0 for count in late.values()), late
    assert found[("callstream_worker_flush_seconds_count", ())] >= 1
