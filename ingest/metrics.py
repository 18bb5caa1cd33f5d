"""The ingress's Prometheus metrics, in a registry of its own (one per app, so tests can build
several apps in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
    # Labelled children, looked up once per (route, status): .labels() takes a lock each call.
    _children: dict[tuple[str, int], tuple[Counter, Histogram]] = field(default_factory=dict)
    _published: dict[str, Counter] = field(default_factory=dict)

    def observe_published(self, topic: str) -> None:
        child = self._published.get(topic)
        if child is None:
            child = self._published[topic] = self.published.labels(topic)
        child.inc()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        children = self._children.get((route, status))
        if children is None:
            children = (
                self.requests.labels(route, str(status)),
                self.request_seconds.labels(route),
            )
            self._children[(route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    @classmethod
    def create(cls) -> IngressMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "callstream_ingress_requests",
                "HTTP requests by route and status",
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
        )
