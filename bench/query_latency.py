"""``GET /calls/{call_id}`` latency while the worker folds a steady stream, for
bench/processors.py.

The bench feeds new calls at a steady rate (half the worker's measured maximum) and, at the same
time, asks the worker for calls it holds at a steady rate of its own, open loop: each request is
due at a fixed instant and its latency counts from that instant, so a stalled worker shows in
the figures instead of slowing the requests down (no coordinated omission). Both loops are
bounded in count and time; the worker is on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from dataclasses import dataclass

import aiohttp
from aiokafka import AIOKafkaProducer

from bench.synthetic_calls import Record

FOLDED = re.compile(
    rb'^callstream_worker_events_folded_total\{[^}]*topic="([^"]*)"[^}]*\} (\S+)$', re.MULTILINE
)


@dataclass(frozen=True)
class Latency:
    requests: int
    errors: int  # answers other than 200, and failures
    p50_ms: float
    p99_ms: float
    max_ms: float
    request_rate: float
    fed_events_per_s: float
    folded_events_per_s: float  # input records the worker folded meanwhile, per second


async def folded(session: aiohttp.ClientSession, metrics_url: str, topics: set[str]) -> float:
    """Input records the worker processed so far (``callstream_worker_events_folded_total``)."""
    async with session.get(metrics_url) as response:
        body = await response.read()
    return sum(float(count) for topic, count in FOLDED.findall(body) if topic.decode() in topics)


async def feed(
    bootstrap: str, names: dict[str, str], records: list[Record], rate: float, seconds: float
) -> int:
    """Send ``records`` at ``rate`` a second, for ``seconds`` at most; how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    sent = 0
    try:
        started = time.perf_counter()
        for logical, key, value in records:
            due = started + sent / rate
            if due - started > seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(names[logical], value, key=key)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def ask(session: aiohttp.ClientSession, url: str, due: float, latencies: list[float]) -> bool:
    """One GET; its latency from when it was due. Whether it answered 200."""
    try:
        async with session.get(url) as response:
            await response.read()
            ok = response.status == 200
    except aiohttp.ClientError:
        ok = False
    latencies.append((time.perf_counter() - due) * 1000)
    return ok


async def steady_gets(
    base_url: str, call_ids: list[str], rate: float, seconds: float, seed: int = 7
) -> tuple[list[float], int]:
    """GET /calls/{call_id} of random ``call_ids`` at ``rate`` a second for ``seconds``: each
    request's latency in ms, and how many failed."""
    rng = random.Random(seed)
    latencies: list[float] = []
    tasks: list[asyncio.Task[bool]] = []
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            url = f"{base_url}/calls/{rng.choice(call_ids)}"
            tasks.append(asyncio.create_task(ask(session, url, due, latencies)))
        answers = await asyncio.gather(*tasks)
    return latencies, answers.count(False)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def latency_under_load(
    bootstrap: str,
    names: dict[str, str],
    base_url: str,
    *,
    records: list[Record],
    call_ids: list[str],
    feed_rate: float,
    request_rate: float,
    seconds: float,
    input_topics: set[str],
) -> Latency:
    """Feed ``records`` at ``feed_rate`` while GETs of ``call_ids`` run at ``request_rate``."""
    async with aiohttp.ClientSession() as session:
        metrics_url = f"{base_url}/metrics"
        before, started = await folded(session, metrics_url, input_topics), time.perf_counter()
        fed, (latencies, errors) = await asyncio.gather(
            feed(bootstrap, names, records, feed_rate, seconds),
            steady_gets(base_url, call_ids, request_rate, seconds),
        )
        elapsed = time.perf_counter() - started
        after = await folded(session, metrics_url, input_topics)
    return Latency(
        requests=len(latencies),
        errors=errors,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        request_rate=len(latencies) / seconds,
        fed_events_per_s=fed / seconds,
        folded_events_per_s=(after - before) / elapsed,
    )
