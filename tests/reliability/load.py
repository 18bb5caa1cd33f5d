"""Webhook load for the cluster fault tests: simulated calls posted to a real ingress by the
project's own poster, each delivery with its own request id, and what became of each one."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_names
from callstream.traffic.delivery import Delivery
from callstream.traffic.plan import merged
from callstream.traffic.poster import PostSettings, PostSummary, post_deliveries
from callstream.traffic.simulation import Simulation, call_plans
from tests.cluster_support import LocalCluster, leaderships, wait_fully_replicated
from tests.integration.ingress_support import TOKEN, IngressProcess, lacking, request_id
from tests.kafka_support import read_until


def input_topics(prefix: str) -> list[str]:
    """The topics a webhook is stored on: live events and CDRs."""
    names = topic_names(prefix)
    return [names[CALL_EVENTS], names[CDRS]]


def simulated(count: int, run: str, per_s: float | None = None) -> list[Delivery]:
    """The first ``count`` webhooks of simulated calls (the simulator's faults included), each
    with its own request id ``{run}-{n}``; ``per_s``: re-timed to that steady rate (posted at
    speed 1), else all at once (speed 0, as fast as the answers allow)."""
    simulation = Simulation(calls=count, start_s=int(time.time()) - 3600, rate=5.0)
    bodies = itertools.islice(merged(call_plans(simulation)), count)
    return [
        replace(d, at_s=n / per_s if per_s else 0.0, request_id=f"{run}-{n}")
        for n, d in enumerate(bodies)
    ]


@dataclass(frozen=True)
class Outcome:
    """A delivery's final answer (None: no HTTP answer), and when it came (monotonic)."""

    status: int | None
    answer: bytes
    at: float


class Load:
    """The poster at work in the background, its counts, and each delivery's outcome."""

    def __init__(self, deliveries: list[Delivery]) -> None:
        self.deliveries = {d.request_id: d for d in deliveries}
        self.outcomes: dict[str, Outcome] = {}
        self.summary = PostSummary()
        self.started = time.monotonic()  # set again when the poster starts
        self._changed = asyncio.Event()

    def on_result(self, delivery: Delivery, status: int | None, answer: bytes) -> None:
        self.outcomes[delivery.request_id] = Outcome(status, answer, time.monotonic())

    def update(self, summary: PostSummary) -> None:
        self.summary = summary
        self._changed.set()

    async def until_acked(self, count: int, deadline_s: float = 60.0) -> None:
        """Until ``count`` deliveries were answered 2xx; raises at the deadline."""
        deadline = time.monotonic() + deadline_s
        while self.summary.acked < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.summary.acked} of {count} acked in {deadline_s} s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    def answer_s(self, rid: str) -> float:
        """How long a delivery waited for its final answer from its time in the load (the
        poster sends on time while it has free connections)."""
        return self.outcomes[rid].at - (self.started + self.deliveries[rid].at_s)

    def acked(self) -> set[str]:
        return {rid for rid, o in self.outcomes.items() if o.status and 200 <= o.status < 300}

    def statuses(self) -> dict[int | None, int]:
        """Final outcomes by status (None: no answer), for the figures."""
        counts: dict[int | None, int] = defaultdict(int)
        for outcome in self.outcomes.values():
            counts[outcome.status] += 1
        return dict(counts)


@asynccontextmanager
async def loading(
    ingress: IngressProcess, deliveries: list[Delivery], **post: Any
) -> AsyncIterator[tuple[Load, asyncio.Task[PostSummary]]]:
    """Post ``deliveries`` to ``ingress`` in the background (``post``: PostSettings' fields);
    the load and its task, cancelled if the block leaves before it ends."""
    load = Load(deliveries)
    speed = 1.0 if any(d.at_s for d in deliveries) else 0.0
    settings = PostSettings(url=f"{ingress.url}/webhooks/omicall", token=TOKEN, speed=speed, **post)
    load.started = time.monotonic()
    task = asyncio.create_task(
        post_deliveries(deliveries, settings, on_result=load.on_result, progress=load)
    )
    try:
        yield load, task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def finished(task: asyncio.Task[PostSummary], deadline_s: float) -> PostSummary:
    """The load's counts once every delivery has its outcome; raises at the deadline."""
    try:
        return await asyncio.wait_for(asyncio.shield(task), deadline_s)
    except TimeoutError:
        raise AssertionError(f"the load did not end within {deadline_s} s") from None


@dataclass(frozen=True)
class Stored:
    """What the input topics hold for a load: records, acked deliveries found, extra copies
    (a 503'd attempt that landed as well as its retry: at-least-once, which the worker
    deduplicates) and records of attempts never acked."""

    records: int
    acked_found: int
    copies: int
    unacked: int


async def stored_as_sent(bootstrap: str, prefix: str, *loads: Load) -> Stored:
    """Read the input topics until every acked delivery is there; each record must be a
    delivery of the loads, byte for byte as sent, on the topic its answer named."""
    deliveries = {rid: d for load in loads for rid, d in load.deliveries.items()}
    outcomes = {rid: o for load in loads for rid, o in load.outcomes.items()}
    acked = set().union(*(load.acked() for load in loads))
    by_topic: dict[str, set[str]] = {name: set() for name in input_topics(prefix)}
    for rid in acked:
        by_topic[orjson.loads(outcomes[rid].answer)["topic"]].add(rid)
    seen: list[str] = []
    for name, wanted in by_topic.items():
        for record in await read_until(bootstrap, name, lacking(wanted), settle_s=0.5):
            rid = request_id(record)
            assert rid in deliveries, f"{name} holds a record nobody sent: {rid}"
            assert record.value == deliveries[rid].body, f"{rid} stored altered"
            assert rid not in acked or rid in wanted, f"{rid} acked as on another topic"
            seen.append(rid)
    found = acked & set(seen)
    assert found == acked
    return Stored(len(seen), len(found), len(seen) - len(set(seen)), len(set(seen) - acked))


async def busiest_leader(admin: AIOKafkaAdminClient, prefix: str) -> tuple[int, int]:
    """The node leading the most input partitions (the lowest id on a tie), and how many."""
    counts = await leaderships(admin, input_topics(prefix))
    node = min(counts, key=lambda n: (-counts[n], n))
    return node, counts[node]


@asynccontextmanager
async def node_killed(
    cluster: LocalCluster, node: int, admin: AIOKafkaAdminClient, prefix: str
) -> AsyncIterator[None]:
    """``node`` SIGKILLed for the block; then started again and back in sync on the input
    topics (as the next test expects)."""
    os.kill(cluster.node_pid(node), signal.SIGKILL)
    try:
        yield
    finally:
        await asyncio.to_thread(cluster.start)
        await wait_fully_replicated(admin, input_topics(prefix))


@contextmanager
def process_paused(pid: int) -> Iterator[None]:
    """The process SIGSTOPped for the block, SIGCONTed whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def figures(title: str, **values: object) -> None:
    """One line of a run's figures (pytest -s shows them; docs/reliability.md quotes them)."""
    print(f"\n[{title}] " + " ".join(f"{key}={value}" for key, value in values.items()))
