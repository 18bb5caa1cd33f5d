"""The ingress's Prometheus metrics, in a registry of its own (one per app, so tests can build
several apps in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

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
                "client connections open now (this process)",
                registry=registry,
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
                "1 while GET /readyz would answer 200 (Kafka reached, topics checked), else 0",
                registry=registry,
            ),
        )
