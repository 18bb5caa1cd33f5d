"""The registry of every topic callstream reads or writes: name, key, value, configuration.

Names are the public contract (/docs/schemas.md); deployments may put a prefix in front
(``CALLSTREAM_TOPIC_PREFIX``, read by the callers' settings, never here). A change that breaks
readers of a topic's values is published on a new topic whose name ends in ``.v2`` (``.v3`` …),
with ``version`` to match; additive changes keep the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import msgspec

from callstream.schemas.calls import CallState, CompletedCall, LiveCall
from callstream.schemas.errors import PayloadKind
from callstream.schemas.headers import REJECTED_HEADERS, WEBHOOK_HEADERS, RecordHeader
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.rejected import RejectedWebhook

CleanupPolicy = Literal["delete", "compact"]
_DAY_MS = 86_400_000
_VERSION_SUFFIX = re.compile(r"\.v(\d+)$")


@dataclass(frozen=True)
class TopicSpec:
    """One topic's contract: what its keys and values are, and how Kafka keeps them."""

    name: str
    description: str
    key: str
    value: type[msgspec.Struct]
    # True: values are the provider's bytes as received, described (not produced) by ``value``.
    as_received: bool = False
    tombstones: bool = False
    version: int = 1
    partitions: int = 6
    cleanup_policy: CleanupPolicy = "delete"
    retention_ms: int = 7 * _DAY_MS  # -1: forever
    # The Kafka headers of its records: on every record, or only where ``headers_only`` says.
    headers: tuple[RecordHeader, ...] = ()
    headers_only: str | None = None

    def __post_init__(self) -> None:
        match = _VERSION_SUFFIX.search(self.name)
        named = int(match.group(1)) if match else 1
        if named != self.version:
            raise ValueError(f"topic {self.name} has version {self.version}: the name must say so")

    def full_name(self, prefix: str = "") -> str:
        """The topic's name on the cluster, after the deployment's prefix."""
        return f"{prefix}{self.name}"


CALL_EVENTS = "omicall.call-events"
CDRS = "omicall.cdrs"
REJECTED = "omicall.rejected"
CALL_STATE = "callstream.call-state"
CALLS_COMPLETED = "callstream.calls-completed"
LIVE_CALLS = "callstream.live-calls"
METRICS = "callstream.metrics"

TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        name=CALL_EVENTS,
        description="Live call-state events from OMICall, bytes as received.",
        key="call_uuid",
        value=LiveCallEvent,
        as_received=True,
        headers=WEBHOOK_HEADERS,
    ),
    TopicSpec(
        name=CDRS,
        description="Final call detail records from OMICall, bytes as received.",
        key="transaction_id",
        value=CallDetailRecord,
        as_received=True,
        headers=WEBHOOK_HEADERS,
    ),
    TopicSpec(
        name=REJECTED,
        description="Authenticated webhook bodies that failed validation, with the reason.",
        key="the call id when the parser found one, else no key",
        value=RejectedWebhook,
        retention_ms=30 * _DAY_MS,
        headers=REJECTED_HEADERS,
        headers_only=(
            "On the records the ingress writes; the worker's records (bodies its parser "
            "refused) carry none."
        ),
    ),
    TopicSpec(
        name=CALL_STATE,
        description="The joined state of each call (live events and CDR).",
        key="call id",
        value=CallState,
        cleanup_policy="compact",
        retention_ms=-1,
    ),
    TopicSpec(
        name=CALLS_COMPLETED,
        description=(
            "A record when a call completes, and again, at a higher revision, whenever its"
            " completed record changes or folds another event (the revision counts them): keep"
            " the highest revision of each call."
        ),
        key="call id",
        value=CompletedCall,
        retention_ms=30 * _DAY_MS,
    ),
    TopicSpec(
        name=LIVE_CALLS,
        description="Calls in progress; a tombstone (null value) when the call ends.",
        key="call id",
        value=LiveCall,
        tombstones=True,
        cleanup_policy="compact",
        retention_ms=-1,
    ),
    TopicSpec(
        name=METRICS,
        description=(
            "Every change of a metrics window (docs/metrics.md): a window's figures over the"
            " completed calls that started in it, each counted once with its latest content."
            " Keep the record of the highest revision per key: that is the window's current"
            " figures. A window whose calls all moved elsewhere is published with offered 0."
        ),
        key="<dimension>:<value>:<window>:<start>",
        value=WindowMetrics,
        retention_ms=30 * _DAY_MS,
    ),
)

# Read together by the call-state join, which needs a call's records of both on the same
# partition number: their partition counts must be equal, and the worker's table has as many.
CO_PARTITIONED = (CALL_EVENTS, CDRS)

_BY_NAME = {spec.name: spec for spec in TOPICS}
_BY_KIND: dict[PayloadKind, str] = {"event": CALL_EVENTS, "cdr": CDRS}


def topic(name: str) -> TopicSpec:
    """The spec of the topic with logical name ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]


def topic_names(prefix: str = "") -> dict[str, str]:
    """Logical name -> name on the cluster, for every topic."""
    return {spec.name: spec.full_name(prefix) for spec in TOPICS}


def topic_for_kind(kind: PayloadKind) -> str:
    """The logical topic a provider payload of ``kind`` is published to."""
    return _BY_KIND[kind]
