"""The JSON-lines files `replay` reads and `capture` writes (docs/traffic.md).

A line is either a webhook body as the provider sent it (posted as the line's bytes, line end
removed) or a captured record::

    {"topic": ..., "partition": ..., "offset": ..., "timestamp_ms": ..., "key": ...,
     "body": {...}, "body_text": "..."}

``body_text`` is the record's value exactly (it is UTF-8 JSON), and what `replay` posts;
``body`` is the same parsed, for people and ``jq``. A value that is not UTF-8 is kept as
``body_base64`` instead. A hand-written record with only ``body`` is posted re-encoded.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from callstream.traffic.delivery import Delivery

# Where a raw body says when it happened: live events, then CDRs (ms), then call times (s).
_MS_FIELDS = ("date_time", "last_updated_date", "created_date")
_S_FIELDS = ("time_end_call", "time_start_call")
_CALL_ID_FIELDS = ("call_uuid", "transaction_id")
_CAPTURE_BODIES = ("body_text", "body_base64", "body")

SkipReport = Callable[[int, str], None]
"""Told each skipped line's number (from 1) and why."""


class LineError(ValueError):
    """A line that cannot be posted; the message says why."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """One line's body, the time it happened (epoch ms, None when it does not say) and its
    call id ("" when unknown)."""

    body: bytes
    time_ms: float | None
    call_id: str


def _number(value: object) -> float | None:
    """A positive finite number, or a string of one (the provider sends both)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def body_time_ms(body: dict[str, Any]) -> float | None:
    """When a raw webhook body happened, in epoch ms: a live event's ``date_time``, a CDR's
    ``last_updated_date`` or ``created_date`` (ms), else ``time_end_call`` or
    ``time_start_call`` (s); None when it has none of them."""
    for name in _MS_FIELDS:
        if (ms := _number(body.get(name))) is not None:
            return ms
    for name in _S_FIELDS:
        if (seconds := _number(body.get(name))) is not None:
            return seconds * 1000
    return None


def _call_id(body: dict[str, Any]) -> str:
    for name in _CALL_ID_FIELDS:
        if isinstance(value := body.get(name), str):
            return value
    return ""


def is_capture(line: dict[str, Any]) -> bool:
    """A captured record rather than a provider's body (which has no ``topic`` and
    ``timestamp_ms``)."""
    return "topic" in line and "timestamp_ms" in line and any(k in line for k in _CAPTURE_BODIES)


def _captured_body(line: dict[str, Any]) -> bytes:
    text, encoded, body = line.get("body_text"), line.get("body_base64"), line.get("body")
    if isinstance(text, str):
        return text.encode("utf-8")
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise LineError("body_base64 is not base64") from None
    if isinstance(body, dict):
        return orjson.dumps(body)
    raise LineError("a captured record without a body (a tombstone?)")


def read_line(line: bytes) -> Recorded:
    """The body a line (its line end removed) posts, with its time and call id."""
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError as bad:
        raise LineError(f"not JSON ({bad})") from None
    if not isinstance(parsed, dict):
        raise LineError(f"not a JSON object but {type(parsed).__name__}")
    if not is_capture(parsed):
        return Recorded(line, body_time_ms(parsed), _call_id(parsed))
    key = parsed.get("key")
    return Recorded(
        _captured_body(parsed),
        _number(parsed.get("timestamp_ms")),
        key if isinstance(key, str) else "",
    )


def deliveries(lines: Iterable[bytes], skipped: SkipReport) -> Iterator[Delivery]:
    """A delivery per line, lazily, in file order: at the line's time after the first timed
    line's, or right after the previous line when it has no time or an earlier one. Blank lines
    are passed over; lines that cannot be posted go to ``skipped``."""
    first_ms: float | None = None
    previous_at = 0.0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        try:
            recorded = read_line(line)
        except LineError as error:
            skipped(number, str(error))
            continue
        at = previous_at
        if recorded.time_ms is not None:
            if first_ms is None:
                first_ms = recorded.time_ms
            at = max(previous_at, (recorded.time_ms - first_ms) / 1000)
        previous_at = at
        yield Delivery(at, recorded.body, recorded.call_id)


def _exact(value: bytes, text_name: str, base64_name: str) -> dict[str, str]:
    """``{text_name: the text}`` for UTF-8 bytes (exact: they decode and encode back the
    same), else ``{base64_name: ...}``."""
    try:
        return {text_name: value.decode("utf-8")}
    except UnicodeDecodeError:
        return {base64_name: base64.b64encode(value).decode("ascii")}


class KafkaRecord(Protocol):
    """What a capture line keeps of a record (aiokafka's ``ConsumerRecord`` has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def capture_line(record: KafkaRecord) -> bytes:
    """A record as one line of a capture file (newline included)."""
    key, value = record.key, record.value
    line: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp,
        **(_exact(key, "key", "key_base64") if key is not None else {"key": None}),
    }
    if value is None:
        line["body"] = None
        return orjson.dumps(line) + b"\n"
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        line["body"] = parsed
    line.update(_exact(value, "body_text", "body_base64"))
    return orjson.dumps(line) + b"\n"
