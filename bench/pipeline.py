"""Webhooks through the whole pipeline (ingress, Kafka, worker) against the ingress alone, in
one run; and how soon a webhook's 200 shows in ``GET /calls/{call_id}``.

Traffic is `callstream simulate`'s (no delivery faults: a duplicate would show at once and
flatter the latency), posted by its poster (``--concurrency`` requests in flight at most), which
is also the load generator of both figures:
0. the poster against a bare aiohttp handler (bench/bare_server.py): the load generator's own
   ceiling on this machine, for reading the next two figures.
1. **ingest only**: one ingress, no worker, closed loop: webhooks acked per second.
2. **sustained**: a fresh ingress and topics with a worker folding them, offered rising rates
   open loop (from 30% of the ingest-only rate, 20% more each step, ``--step-s`` seconds each;
   20% less each step instead when the worker cannot keep up with the first):
   the highest rate the ingress acks (95% of it at least) while the worker keeps up: its lag
   (webhooks acked and not yet folded, ``callstream_worker_events_folded_total``, read every
   250 ms) at most a second's worth all through the step's second half. A first step at the
   lowest rate warms the worker up and does not count.
3. **latency**: the same pipeline offered 25%, 50% and 80% of the sustained rate, each for
   ``--latency-s`` seconds (15); about ``--probes`` webhooks a second (20) are followed from
   their 200 until ``/calls/{call_id}`` lists them among its ``events_seen`` (polled from every
   2 ms, slowing to every 25 ms).

A broker is started for the run unless KAFKA_BOOTSTRAP_SERVERS names one.

    .venv/bin/python -m bench.pipeline [--calls 6000] [--concurrency 64] [--step-s 10]
        [--latency-s 15] [--probes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.ingest import kafka, server
from bench.query_latency import folded, percentile
from bench.report import print_table, write_results
from callstream.kafka import broker
from callstream.processors.callstate import fingerprint
from callstream.schemas.parse import parse_webhook
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_names
from callstream.traffic.delivery import Delivery
from callstream.traffic.plan import FaultRates, merged
from callstream.traffic.poster import (
    PostSettings,
    PostSummary,
    ResultCallback,
    post_deliveries,
)
from callstream.traffic.simulation import Simulation, call_plans

TARGETS = {"ratio_to_ingest_only": 0.5, "p99_ms_at_half_rate": 250.0}
TOKEN = "bench-token-" + uuid.uuid4().hex
NO_FAULTS = FaultRates(
    duplicate=0, reorder=0, missing_cdr=0, missing_live=0, corrected_cdr=0, disposition=0.5
)
SHARES = (0.25, 0.5, 0.8)  # of the sustained rate, for the latency
LADDER_FROM, LADDER_FACTOR = 0.3, 1.2  # the offered rates: from 30% of ingest-only, +20% a step
LADDER_LOW = 0.01  # ... or down from there, when the worker cannot keep up with 30%
KEPT_UP_S = 1.0  # the worker keeps up while its lag is at most this many seconds' worth
LAG_EVERY_S = 0.25  # how often a step reads the worker's lag
POLL_FIRST_S = 0.002  # a followed webhook's /calls polls start this often ...
POLL_MAX_S = 0.025  # ... and slow to this: a slow worker is not flooded with GETs


def traffic(calls: int, seed: int) -> list[Delivery]:
    """``calls`` simulated calls' webhooks, in time order, over the last few minutes."""
    rate = 50.0
    simulation = Simulation(
        calls=calls, start_s=int(time.time() - calls / rate), rate=rate, seed=seed, faults=NO_FAULTS
    )
    return list(merged(call_plans(simulation)))


def paced(deliveries: list[Delivery], rate: float) -> Iterator[Delivery]:
    """The same bodies, due one every ``1 / rate`` seconds."""
    for index, delivery in enumerate(deliveries):
        yield replace(delivery, at_s=index / rate)


@dataclass
class Stack:
    ingress_url: str
    metrics_url: str  # the worker's ("" without one)
    calls_url: str
    topics: set[str]


@contextmanager
def stack(bootstrap: str, tmp: str, *, with_worker: bool) -> Iterator[Stack]:
    prefix = f"benchpl{uuid.uuid4().hex[:6]}."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
        "CALLSTREAM_WEBHOOK_TOKENS": TOKEN,
        "CALLSTREAM_APP_ID": f"{prefix}worker",
        "CALLSTREAM_DATA_DIR": str(Path(tmp) / prefix),
        "CALLSTREAM_LOG_LEVEL": "WARNING",
    }
    names = topic_names(prefix)
    port = broker.free_port()
    ingress = [sys.executable, "-m", "callstream", "ingest", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with server(ingress, env, f"{base}/readyz"):
        if not with_worker:
            yield Stack(f"{base}/webhooks/omicall", "", "", set())
            return
        web = broker.free_port()
        worker = [sys.executable, "-m", "callstream", "worker", "--web-port", str(web)]
        worker_base = f"http://127.0.0.1:{web}"
        with server(worker, env, f"{worker_base}/readyz", 120):
            yield Stack(
                f"{base}/webhooks/omicall",
                f"{worker_base}/metrics",
                f"{worker_base}/calls",
                {names[CALL_EVENTS], names[CDRS]},
            )


async def post(
    deliveries: Iterable[Delivery],
    url: str,
    *,
    speed: float,
    concurrency: int,
    on_result: ResultCallback | None = None,
) -> PostSummary:
    settings = PostSettings(url=url, token=TOKEN, speed=speed, concurrency=concurrency)
    summary = await post_deliveries(deliveries, settings, on_result=on_result)
    if summary.acked != summary.sent:
        raise RuntimeError(f"not every webhook was acked: {summary}")
    return summary


@dataclass(frozen=True)
class Step:
    offered: float
    acked: float  # per second
    lag_late: int  # the most webhooks acked and not folded yet in the step's second half
    latencies_ms: list[float]

    def kept_up(self) -> bool:
        return self.acked >= 0.95 * self.offered and self.lag_late <= KEPT_UP_S * self.offered

    def latency(self) -> dict[str, float | int]:
        values = self.latencies_ms
        return {
            "followed": len(values),
            "p50_ms": statistics.median(values),
            "p99_ms": percentile(values, 0.99),
            "max_ms": max(values),
        }


class Pipeline:
    """Open-loop steps against one ingress and worker; each step's calls are new."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession, concurrency: int) -> None:
        self.stack = stack
        self.session = session
        self.concurrency = concurrency
        self.posted = 0
        self.steps = 0

    async def step(self, rate: float, seconds: float, probes_per_s: float = 0) -> Step:
        """Offer ``rate`` webhooks a second for ``seconds``, following ``probes_per_s`` of
        them to ``/calls/{call_id}``."""
        count = max(1, int(rate * seconds))
        self.steps += 1
        deliveries = traffic(max(10, int(count / 3)), seed=100 + self.steps)[:count]
        every = max(1, round(rate / probes_per_s)) if probes_per_s else 0
        latencies: list[float] = []
        follows: set[asyncio.Task[None]] = set()
        answered = 0

        def on_result(delivery: Delivery, _status: int | None, _body: bytes) -> None:
            nonlocal answered
            answered += 1
            if every and answered % every == 0:
                task = asyncio.create_task(self.follow(delivery, time.perf_counter(), latencies))
                follows.add(task)

        lags: list[int] = []

        async def read_lags() -> None:
            while True:
                await asyncio.sleep(LAG_EVERY_S)
                lags.append(max(0, self.posted + answered - int(await self.folded())))

        reader = asyncio.create_task(read_lags())
        started = time.perf_counter()
        try:
            summary = await post(
                paced(deliveries, rate),
                self.stack.ingress_url,
                speed=1.0,
                concurrency=self.concurrency,
                on_result=on_result,
            )
        finally:
            reader.cancel()
        elapsed = time.perf_counter() - started
        self.posted += summary.acked
        await asyncio.gather(*follows)
        late = lags[len(lags) // 2 :] or [self.posted - int(await self.folded())]
        return Step(rate, summary.acked / elapsed, max(late), latencies)

    async def folded(self) -> float:
        return await folded(self.session, self.stack.metrics_url, self.stack.topics)

    async def follow(self, delivery: Delivery, acked_at: float, into: list[float]) -> None:
        """Poll ``/calls/{call_id}`` until it lists ``delivery`` as seen."""
        name = fingerprint(parse_webhook(delivery.body).payload)
        url = f"{self.stack.calls_url}/{delivery.call_id}"
        pause = POLL_FIRST_S
        while time.perf_counter() - acked_at < 30:
            async with self.session.get(url) as got:
                if got.status == 200 and name in orjson.loads(await got.read())["events_seen"]:
                    into.append((time.perf_counter() - acked_at) * 1000)
                    return
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, POLL_MAX_S)
        raise RuntimeError(f"{name} of {delivery.call_id} did not show in /calls within 30 s")

    async def drain(self, deadline_s: float = 120) -> None:
        """Until the worker has folded everything posted; raises at the deadline."""
        deadline = time.perf_counter() + deadline_s
        while await self.folded() < self.posted:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the worker did not fold {self.posted} webhooks in time")
            await asyncio.sleep(0.1)


async def sustained_rate(
    offer: Callable[[float], Awaitable[Step]], ingest_rate: float
) -> tuple[float, list[Step]]:
    """The highest rate offered that the pipeline kept up with, and every step offered: up
    from 30% of the ingest-only rate until a rate falls behind twice running (once may be the
    machine's hiccup: the rate is offered again); when the first one does, down until one keeps
    up (to 1% of it), so a slow worker gives its figure, a missed target."""
    ladder: list[Step] = []
    rate = ingest_rate * LADDER_FROM
    while rate <= ingest_rate * 1.5:
        ladder.append(await offer(rate))
        if not ladder[-1].kept_up():
            ladder.append(await offer(rate))
            if not ladder[-1].kept_up():
                break
        rate *= LADDER_FACTOR
    while not any(s.kept_up() for s in ladder) and rate / LADDER_FACTOR >= ingest_rate * LADDER_LOW:
        rate /= LADDER_FACTOR
        ladder.append(await offer(rate))
    sustained = max((s.offered for s in ladder if s.kept_up()), default=0.0)
    if not sustained:
        raise RuntimeError(f"the pipeline kept up with no rate offered: {ladder}")
    return sustained, ladder


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=6000, help="calls for the ingest-only rate")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds of each step")
    parser.add_argument("--probes", type=float, default=20.0, help="webhooks followed a second")
    parser.add_argument(
        "--latency-s", type=float, default=15.0, help="seconds of each latency step"
    )
    return parser.parse_args(argv)


def say(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


async def client_ceiling(deliveries: list[Delivery]) -> float:
    """The load generator's own most: the poster against a bare aiohttp handler."""
    port = broker.free_port()
    command = [sys.executable, str(Path(__file__).with_name("bare_server.py")), str(port)]
    with server(command, dict(os.environ), f"http://127.0.0.1:{port}/healthz"):
        url = f"http://127.0.0.1:{port}/webhooks/omicall"
        return (await post(deliveries, url, speed=0, concurrency=64)).rate


async def measure(bootstrap: str, tmp: str, args: argparse.Namespace) -> dict[str, Any]:
    say("the load generator against a bare aiohttp handler ...")
    ceiling = await client_ceiling(traffic(args.calls, seed=1))
    say("ingest only ...")
    with stack(bootstrap, tmp, with_worker=False) as alone:
        deliveries = traffic(args.calls, seed=1)
        ingest_rate = (
            await post(deliveries, alone.ingress_url, speed=0, concurrency=args.concurrency)
        ).rate
    with stack(bootstrap, tmp, with_worker=True) as served:
        async with aiohttp.ClientSession() as session:
            pipeline = Pipeline(served, session, args.concurrency)
            say("warming the worker up ...")
            await pipeline.step(ingest_rate * LADDER_FROM, args.step_s / 2)
            await pipeline.drain()

            async def offer(rate: float) -> Step:
                say(f"offering {rate:,.0f} webhooks/s ...")
                step = await pipeline.step(rate, args.step_s)
                await pipeline.drain()
                return step

            sustained, ladder = await sustained_rate(offer, ingest_rate)
            latency = []
            for share in SHARES:
                say(f"latency at {share:.0%} of {sustained:,.0f}/s ...")
                step = await pipeline.step(sustained * share, args.latency_s, args.probes)
                await pipeline.drain()
                latency.append(
                    {
                        "share": share,
                        "offered": step.offered,
                        "acked": step.acked,
                        "lag_late": step.lag_late,
                        **step.latency(),
                    }
                )
    return {
        "load_generator_ceiling": ceiling,
        "ingest_only_rate": ingest_rate,
        "sustained_rate": sustained,
        "ratio_to_ingest_only": sustained / ingest_rate,
        "ladder": [
            {
                "offered": s.offered,
                "acked": s.acked,
                "lag_late": s.lag_late,
                "kept_up": s.kept_up(),
            }
            for s in ladder
        ],
        "latency": latency,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        figures = asyncio.run(measure(bootstrap, tmp, args))
    rows: list[list[object]] = [
        [
            "the poster against a bare aiohttp handler, webhooks/s",
            figures["load_generator_ceiling"],
            "",
        ],
        ["ingest only (no worker, closed loop), webhooks/s", figures["ingest_only_rate"], ""],
        ["sustained with the worker keeping up, webhooks/s", figures["sustained_rate"], ""],
        ["ratio sustained / ingest only", figures["ratio_to_ingest_only"], ">= 0.5"],
    ]
    for step in figures["ladder"]:
        verdict = "kept up" if step["kept_up"] else "fell behind"
        rows.append(
            [
                f"  offered {step['offered']:,.0f}/s: acked {step['acked']:,.0f}/s, "
                f"lag up to {step['lag_late']:,}: {verdict}",
                "",
                "",
            ]
        )
    for step in figures["latency"]:
        share = f"{step['share']:.0%} ({step['offered']:,.0f}/s)"
        target = "< 250" if step["share"] == 0.5 else ""
        rows += [
            [f"200 -> /calls at {share}: p50 ms", step["p50_ms"], ""],
            [
                f"  p99 ms ({step['followed']} followed; lag up to {step['lag_late']})",
                step["p99_ms"],
                target,
            ],
            ["  max ms", step["max_ms"], ""],
        ]
    print_table(["measure", "value", "target"], rows)
    half = next(step for step in figures["latency"] if step["share"] == 0.5)
    met = {
        "ratio_to_ingest_only": figures["ratio_to_ingest_only"] >= TARGETS["ratio_to_ingest_only"],
        "p99_ms_at_half_rate": half["p99_ms"] < TARGETS["p99_ms_at_half_rate"],
    }
    figures.update(targets=TARGETS, met=met)
    print(f"wrote {write_results('pipeline', figures)}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
