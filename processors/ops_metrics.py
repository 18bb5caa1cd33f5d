"""The worker's Prometheus metrics, in a registry of its own (one per app, as the ingress's
ingest/metrics.py), and what ``GET /metrics`` computes when scraped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.errors import KafkaError
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from callstream.processors.step import Outcome

log = logging.getLogger("callstream.processors")
# A flush lingers 100 ms, then waits for Kafka's acks (processors/batches.py).
FLUSH_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_TIMEOUT_S = 2.0  # a scrape does not wait longer for the consumer's positions


@dataclass(frozen=True)
class WorkerMetrics:
    """``callstream_worker_*``: what the agents folded, consumer lag, table rows, window emits
    and late drops, flush latency."""

    registry: CollectorRegistry
    events_folded: Counter
    consumer_lag: Gauge
    table_rows: Gauge
    window_emits: Counter
    late_drops: Counter
    completions: Counter
    flush_seconds: Histogram
    ready: Gauge
    store_memory: Gauge
    store_memtables: Gauge
    # Labelled children, looked up once per metric and labels: .labels() takes a lock each call.
    _children: dict[tuple[object, ...], Any] = field(default_factory=dict)

    def _child(self, metric: Counter | Gauge, *labels: str) -> Any:
        child = self._children.get((metric, *labels))
        if child is None:
            child = self._children[(metric, *labels)] = metric.labels(*labels)
        return child

    def observe_folded(self, topic: str, outcome: Outcome) -> None:
        """An input record of ``topic`` (the cluster's name) was processed: ``changed`` its
        call's state, ``unchanged`` (a duplicate, an old event), or ``rejected``."""
        self._child(self.events_folded, topic, outcome).inc()

    def observe_completed(self, first: bool) -> None:
        """A call's completed record was published: its first, or a correction."""
        self._child(self.completions, "first" if first else "correction").inc()

    def window_emitted(self, window: str, count: int = 1) -> None:
        """``count`` changed metric windows of size ``window`` (``1m``, ``15m``, ``1h``, ``1d``)
        were published to ``callstream.metrics``. The metrics agent calls this per record."""
        self._child(self.window_emits, window).inc(count)

    def late_dropped(self, window: str, count: int = 1) -> None:
        """``count`` calls came later than the grace of their ``window``-sized windows and were
        left out of them (the metrics agent logs each too)."""
        self._child(self.late_drops, window).inc(count)

    def observe_flush(self, seconds: float) -> None:
        """A flush's start until Kafka acknowledged all of its batches (processors/batches.py)."""
        self.flush_seconds.observe(seconds)

    def set_table_rows(self, table: str, rows: int) -> None:
        self._child(self.table_rows, table).set(rows)

    def set_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """The lag of every partition assigned now; partitions no longer assigned disappear."""
        self.consumer_lag.clear()
        for (topic, partition), lag in lags.items():
            self.consumer_lag.labels(topic, str(partition)).set(lag)

    @classmethod
    def create(cls) -> WorkerMetrics:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_resident_memory_bytes, CPU, open fds
        return cls(
            registry=registry,
            events_folded=Counter(
                "callstream_worker_events_folded",
                "input records processed, by topic and outcome (changed: the call's state "
                "changed; unchanged: a duplicate or nothing new; rejected: did not parse)",
                ["topic", "outcome"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                "callstream_worker_consumer_lag",
                "records not fetched yet per input partition assigned to this worker "
                "(highwater minus position), as of the scrape",
                ["topic", "partition"],
                registry=registry,
            ),
            table_rows=Gauge(
                "callstream_worker_table_rows",
                "rows per table in this worker's partitions (counted by the timer's full scan, "
                "then by the writes since)",
                ["table"],
                registry=registry,
            ),
            window_emits=Counter(
                "callstream_worker_window_emits",
                "metric windows published to callstream.metrics, by window size",
                ["window"],
                registry=registry,
            ),
            late_drops=Counter(
                "callstream_worker_late_dropped",
                "calls later than their window's grace, left out of it, by window size",
                ["window"],
                registry=registry,
            ),
            completions=Counter(
                "callstream_worker_completions",
                "completed records published to callstream.calls-completed: a call's first "
                "(kind first), or a later revision of it (kind correction: another event folded)",
                ["kind"],
                registry=registry,
            ),
            flush_seconds=Histogram(
                "callstream_worker_flush_seconds",
                "a flush of the output batches, from its start until Kafka acknowledged them",
                buckets=FLUSH_BUCKETS,
                registry=registry,
            ),
            store_memory=Gauge(
                "callstream_worker_store_memory_bytes",
                "RocksDB memory of all the worker's table stores in their one budget "
                "(processors/store_memory.py): the shared cache's use, memtables included; "
                "absent with the memory store",
                registry=registry,
            ),
            store_memtables=Gauge(
                "callstream_worker_store_memtable_bytes",
                "what the memtables of the worker's table stores hold, part of "
                "callstream_worker_store_memory_bytes; absent with the memory store",
                registry=registry,
            ),
            ready=Gauge(
                "callstream_worker_ready",
                "1 while GET /readyz would answer 200 (joined, tables recovered, no rebalance)",
                registry=registry,
            ),
        )


class Counted(Protocol):
    """A table that knows its rows (processors/sink.py's TableSink)."""

    @property
    def rows(self) -> int: ...


class StoreUsage(Protocol):
    """The stores' memory, ``total`` and ``memtables``, in bytes (processors/store_memory.py)."""

    def usage(self) -> Mapping[str, int]: ...


async def consumer_lag(consumer: Any, topics: Collection[str]) -> dict[tuple[str, int], int]:
    """Highwater minus position of each assigned partition of ``topics`` (faust's consumer:
    ``assignment``, ``highwater``, ``position``); a partition not fetched from yet has no
    highwater and is left out."""
    lags: dict[tuple[str, int], int] = {}
    for tp in sorted(consumer.assignment()):
        if tp.topic not in topics:
            continue
        highwater = consumer.highwater(tp)
        position = await consumer.position(tp)
        if highwater is not None and position is not None:
            lags[(tp.topic, tp.partition)] = max(highwater - position, 0)
    return lags


class Scrape:
    """``GET /metrics``: table rows from the sinks and consumer lag from the consumer, computed
    now, then the exposition. Lag only while the worker is ready: until it has joined and
    recovered its tables, its consumer has no positions."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        tables: Mapping[str, Counted],
        consumer: Callable[[], Any],
        *,
        topics: Collection[str],
        ready: Callable[[], bool],
        store_memory: StoreUsage | None = None,
    ) -> None:
        """``tables``: each table's name and sink; ``consumer``: faust's ``app.consumer`` (made
        when the app starts); ``topics``: the input topics whose lag is reported;
        ``store_memory``: the RocksDB stores' memory (None: a memory store)."""
        self.metrics = metrics
        self.tables = tables
        self.consumer = consumer
        self.topics = topics
        self.ready = ready
        self.store_memory = store_memory

    async def __call__(self) -> bytes:
        for name, table in self.tables.items():
            self.metrics.set_table_rows(name, table.rows)
        if self.store_memory is not None:
            usage = self.store_memory.usage()
            self.metrics.store_memory.set(usage["total"])
            self.metrics.store_memtables.set(usage["memtables"])
        ready = self.ready()
        self.metrics.ready.set(ready)
        if ready:
            try:
                lags = await asyncio.wait_for(
                    consumer_lag(self.consumer(), self.topics), LAG_TIMEOUT_S
                )
            except (TimeoutError, KafkaError) as error:  # a rebalance began: next scrape
                log.warning("no consumer lag this scrape: %r", error)
                lags = {}
            self.metrics.set_lag(lags)
        else:
            self.metrics.set_lag({})
        return generate_latest(self.metrics.registry)
