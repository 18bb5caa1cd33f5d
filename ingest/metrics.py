"""The ingress's Prometheus metrics, in a registry of its own (one per app, so tests can build
several apps in one process).

Several ingress processes on one port (ingest/processes.py) keep their figures in
prometheus_client's multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, set before they start), so
that a scrape, which reaches one of them, shows the sums of all of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from callstream.ingest.processes import MULTIPROCESS_DIR

_PID_FILE = re.compile(r"_(\d+)\.db$")  # prometheus_client's files: <kind>_<pid>.db
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

# The status label of a request whose client closed the connection before its body was read:
# no response was sent, and no fault of ours.
CLIENT_CLOSED = "client_closed"
LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class IngressMetrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    kafka_ack_seconds: Histogram
    in_flight: Gauge
    received_bytes: Counter
    published: Counter
    open_connections: Gauge
    closed_connections: Counter
    ready: Gauge
    # Labelled children, looked up once per metric and labels: .labels() takes a lock each call.
    _children: dict[tuple[object, ...], Any] = field(default_factory=dict)

    def _child(self, metric: Counter | Histogram, *labels: str) -> Any:
        child = self._children.get((metric, *labels))
        if child is None:
            child = self._children[(metric, *labels)] = metric.labels(*labels)
        return child

    def exposition(self) -> bytes:
        """``GET /metrics``: this process's figures, or every ingress process's summed."""
        directory = os.environ.get(MULTIPROCESS_DIR)
        if directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        registry.register(ProcessesMemory(Path(directory)))
        return generate_latest(registry)

    def observe_published(self, topic: str) -> None:
        self._child(self.published, topic).inc()

    def observe_closed(self, reason: str) -> None:
        """A connection the ingress closed on its own: ``over_limit``, ``header_timeout``,
        ``write_timeout``."""
        self._child(self.closed_connections, reason).inc()

    def observe_request(self, route: str, status: int | str, seconds: float) -> None:
        self._child(self.requests, route, str(status)).inc()
        self._child(self.request_seconds, route).observe(seconds)

    @classmethod
    def create(cls) -> IngressMetrics:
        registry = CollectorRegistry()
        if MULTIPROCESS_DIR not in os.environ:  # else ProcessesMemory, at each scrape
            ProcessCollector(registry=registry)  # process_resident_memory_bytes, CPU, open fds
        return cls(
            registry=registry,
            requests=Counter(
                "callstream_ingress_requests",
                f"HTTP requests by route and status ({CLIENT_CLOSED}: the client left mid-body)",
                ["route", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "callstream_ingress_request_seconds",
                "HTTP request latency by route",
                ["route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            kafka_ack_seconds=Histogram(
                "callstream_ingress_kafka_ack_seconds",
                "time from send to the broker's ack (acks=all)",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                "callstream_ingress_in_flight_requests",
                "requests being handled now",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            received_bytes=Counter(
                "callstream_ingress_received_bytes",
                "webhook body bytes read",
                registry=registry,
            ),
            published=Counter(
                "callstream_ingress_published_records",
                "records acknowledged by Kafka, by topic",
                ["topic"],
                registry=registry,
            ),
            open_connections=Gauge(
                "callstream_ingress_open_connections",
                "client connections open now",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            closed_connections=Counter(
                "callstream_ingress_closed_connections",
                "connections the ingress closed on its own: over_limit (refused, 503), "
                "header_timeout (request headers too slow), write_timeout (responses left unread)",
                ["reason"],
                registry=registry,
            ),
            ready=Gauge(
                "callstream_ingress_ready",
                "1 while GET /readyz would answer 200 (Kafka reached, topics checked), else 0; "
                "with several processes, 1 while every one would",
                registry=registry,
                multiprocess_mode="livemin",
            ),
        )


class ProcessesMemory(Collector):
    """``process_resident_memory_bytes`` of every ingress process that writes to ``directory``
    (labelled by pid): prometheus_client's process collector sees only the one scraped."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "process_resident_memory_bytes",
            "resident memory of each ingress process",
            labels=["pid"],
        )
        found = (_PID_FILE.search(path.name) for path in self.directory.iterdir())
        pids = {int(match.group(1)) for match in found if match}
        for pid in sorted(pids):
            try:
                resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited since it last wrote
            family.add_metric([str(pid)], resident_pages * _PAGE_BYTES)
        yield family
