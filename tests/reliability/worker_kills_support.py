"""Faults injected into workers while the simulator posts: a count of acknowledged webhooks to
time them by, and workers started, killed and stopped without blocking the posting."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import msgspec
from aiokafka.structs import ConsumerRecord
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from callstream.schemas.calls import CompletedCall
from callstream.schemas.topics import CALLS_COMPLETED, topic_names
from callstream.traffic.delivery import Delivery
from tests.callstate_truth import latest_completed
from tests.integration.metrics_support import latest_windows
from tests.integration.simulated_support import Pipeline, Simulated, check_against_truth
from tests.integration.worker_support import Worker, start_worker, wait_worker_ready
from tests.kafka_support import Missing, read_until
from tests.metrics_truth import window_mismatches
from tests.simulated_truth import checked

log = logging.getLogger(__name__)


def paced(deliveries: Iterable[Delivery], per_s: float) -> Iterator[Delivery]:
    """The deliveries in their order, at a steady ``per_s`` a second: the traffic's own clock
    has a tail of corrections minutes long, during which a worker would sit idle."""
    for index, delivery in enumerate(deliveries):
        yield replace(delivery, at_s=index / per_s)


@dataclass
class AckCounter:
    """The webhooks answered 2xx so far (the poster's ``on_result``), and waits for a count:
    a fault's moment is "after N acked webhooks"."""

    acked: int = 0
    over: bool = False
    _waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def on_result(self, _delivery: Delivery, status: int | None, _body: bytes) -> None:
        if status is not None and 200 <= status < 300:
            self.acked += 1
        for count, waiter in list(self._waiters):
            if self.acked >= count and not waiter.done():
                waiter.set_result(None)
                self._waiters.remove((count, waiter))

    def ended(self) -> None:
        """The traffic is over: a wait for a count not reached fails now, not at its
        deadline."""
        self.over = True
        for count, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(
                    AssertionError(f"the traffic ended at {self.acked} acked, before {count}")
                )
        self._waiters.clear()

    async def reached(self, count: int, deadline_s: float) -> None:
        """Until ``count`` webhooks are acked; raises at the deadline (the traffic ended
        before it, or stalled)."""
        if self.acked >= count:
            return
        if self.over:
            raise AssertionError(f"the traffic ended at {self.acked} acked, before {count}")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((count, waiter))
        try:
            await asyncio.wait_for(waiter, deadline_s)
        except TimeoutError:
            raise AssertionError(
                f"{count} acked webhooks not reached in {deadline_s} s: {self.acked}"
            ) from None


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker of the group: same app id (consumer group) for all, each its
    own data dir and web port."""

    bootstrap: str
    prefix: str
    tmp: Path
    app_id: str
    name: str
    env: dict[str, str]
    store: str = "rocksdb"

    async def start(self, deadline_s: float = 120) -> Worker:
        """A worker of the group, ready (joined, its table recovered)."""
        worker = start_worker(
            self.bootstrap,
            self.prefix,
            self.tmp,
            app_id=self.app_id,
            name=self.name,
            extra_env=self.env,
            store=self.store,
            data_dir=self.tmp / f"{self.name}-data",
        )
        try:
            await asyncio.to_thread(wait_worker_ready, worker, deadline_s)
        except BaseException:
            await asyncio.to_thread(worker.stop)
            raise
        return worker


async def records_folded(worker: Worker) -> float:
    """Input records the worker processed, from its Prometheus ``/metrics``."""
    return sum((await folded_by_topic(worker)).values())


async def folded_by_topic(worker: Worker) -> dict[tuple[str, str], float]:
    """Records the worker processed, by topic and outcome (``changed``, ``unchanged``,
    ``rejected``), from its Prometheus ``/metrics``."""
    return folded_in(await scraped(worker.url))


async def scraped(worker_url: str) -> list[Metric]:
    """The worker's Prometheus ``/metrics``, parsed."""
    async with aiohttp.ClientSession() as session, session.get(f"{worker_url}/metrics") as got:
        assert got.status == 200, await got.text()
        return list(text_string_to_metric_families(await got.text()))


def folded_in(families: list[Metric]) -> dict[tuple[str, str], float]:
    """``callstream_worker_events_folded_total`` by topic and outcome."""
    return {
        (sample.labels["topic"], sample.labels["outcome"]): sample.value
        for family in families
        if family.name == "callstream_worker_events_folded"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def revision_faults(values: Iterable[bytes | None]) -> dict[str, list[int]]:
    """Calls with a revision on calls-completed more than once, with theirs: a flush's outputs
    sent again after a worker kill (the same record), or a replay that read the call's events
    in another order (a lower revision with other figures); the highest is checked apart."""
    revisions: dict[str, list[int]] = {}
    for value in values:
        if value is not None:
            call = msgspec.json.decode(value, type=CompletedCall)
            revisions.setdefault(call.call_id, []).append(call.revision)
    return {
        call_id: sorted(seen) for call_id, seen in revisions.items() if len(set(seen)) != len(seen)
    }


async def differences(pipeline: Pipeline, simulated: Simulated) -> list[str]:
    """Every call and window that differs from the truth as of now, each call with its faults,
    revisions on calls-completed and what ``/calls/{call_id}`` answers: the whole list a failed
    :func:`check_against_truth` cut to its first few."""
    names = topic_names(pipeline.prefix)
    everything: Missing = lambda _records: None  # noqa: E731 - read what is there, then settle
    completed = await read_until(pipeline.bootstrap, names[CALLS_COMPLETED], everything, settle_s=3)
    latest = latest_completed(record.value for record in completed)
    revisions = revision_faults(record.value for record in completed)
    truth = {line["call_id"]: line for line in simulated.truth}
    found = []
    async with aiohttp.ClientSession() as session:
        for call_id, want in sorted(simulated.completed.items()):
            got = latest.get(call_id)
            if got is not None and checked(got) == checked(want):
                continue
            async with session.get(f"{pipeline.worker_url}/calls/{call_id}") as answer:
                served = f"{answer.status} {(await answer.text())[:400]}"
            diff: object = "missing"
            if got is not None:
                fields = checked(got)
                diff = {k: (v, fields[k]) for k, v in checked(want).items() if fields[k] != v}
            found.append(
                f"call {call_id}: {diff}; faults {truth[call_id]['faults']}, "
                f"revisions {revisions.get(call_id, 'ok')}; /calls: {served}"
            )
    metrics = await read_until(
        pipeline.bootstrap, names["callstream.metrics"], everything, settle_s=3
    )
    windows = latest_windows(metrics)
    for key in sorted(simulated.windows.keys() | windows.keys()):
        expected = {key: simulated.windows[key]} if key in simulated.windows else {}
        seen = {key: windows[key]} if key in windows else {}
        if (problem := window_mismatches(expected, seen)) is not None:
            found.append(f"window {problem.split(', e.g. ', 1)[1]}")
    return found


async def ends_as_the_truth_says(
    pipeline: Pipeline, simulated: Simulated, report: Path
) -> list[ConsumerRecord]:
    """:func:`check_against_truth` (drained within 120 s); when it fails, every difference
    (:func:`differences`) logged and written to ``report`` before the failure is raised."""
    try:
        return await check_against_truth(pipeline, simulated, deadline_s=120)
    except AssertionError:
        found = await differences(pipeline, simulated)
        await asyncio.to_thread(report.write_text, "\n".join(found) + "\n")
        log.warning("%d differences from the truth (%s):\n%s", len(found), report, "\n".join(found))
        raise
