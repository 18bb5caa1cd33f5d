"""The Kafka headers the ingress puts on the records it publishes: names, values, meaning.

One place for the names: the ingress writes them, the worker reads the receive time, and the
AsyncAPI document declares them (``callstream schemas export``). Values are ASCII text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callstream.schemas.errors import PAYLOAD_KINDS

RECEIVED_AT_MS = "callstream-received-at-ms"
REQUEST_ID = "callstream-request-id"
SOURCE = "callstream-source"
KIND = "callstream-kind"

# A client's X-Request-Id is kept when it matches this, else the ingress makes one.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


@dataclass(frozen=True)
class RecordHeader:
    """One header: its name, what it says, and the JSON Schema of its value as text."""

    name: str
    description: str
    schema: dict[str, Any]


_RECEIVED = (
    RecordHeader(
        RECEIVED_AT_MS,
        "When the ingress received the webhook, epoch milliseconds (decimal).",
        {"type": "string", "pattern": r"^[0-9]+$"},
    ),
    RecordHeader(
        REQUEST_ID,
        "The request's id: the caller's X-Request-Id when it is 1-64 of [A-Za-z0-9._-], "
        "else one the ingress made.",
        {"type": "string", "pattern": REQUEST_ID_PATTERN},
    ),
    RecordHeader(
        SOURCE,
        "The caller's IP address (the X-Forwarded-For client when the peer is a trusted "
        "proxy); empty when unknown.",
        {"type": "string"},
    ),
)
# On every record the ingress writes to omicall.rejected.
REJECTED_HEADERS: tuple[RecordHeader, ...] = _RECEIVED
# On every record of omicall.call-events and omicall.cdrs.
WEBHOOK_HEADERS: tuple[RecordHeader, ...] = (
    *_RECEIVED,
    RecordHeader(
        KIND,
        "What the body is: event (a live call-state event) or cdr (a call detail record).",
        {"type": "string", "enum": list(PAYLOAD_KINDS)},
    ),
)
