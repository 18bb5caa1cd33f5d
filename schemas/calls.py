"""What the processors publish about calls: joined state, the live view, the completed call.

Times are epoch milliseconds, durations seconds; ``None`` where the inputs do not say (a call
without a CDR, or without live events). Ids are strings. The processor issues complete the
folds that fill these; fields may be added, never removed or narrowed (docs/schemas.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from callstream.schemas.omicall import CallId, Direction

Millis = Annotated[int, msgspec.Meta(ge=0, description="epoch milliseconds")]
Secs = Annotated[float, msgspec.Meta(ge=0, description="seconds")]
Revision = Annotated[int, msgspec.Meta(ge=1, description="grows with every correction")]
CallPhase = Literal["ringing", "answered", "ended"]
Outcome = Literal["answered", "missed", "abandoned", "unknown"]
Source = Literal["live", "cdr", "both"]


class CallState(msgspec.Struct, frozen=True, kw_only=True):
    """``callstream.call-state``: everything known about one call so far (compacted by id)."""

    call_id: CallId
    revision: Revision
    phase: CallPhase
    direction: Direction | None = None
    customer_number: str | None = None
    hotline: str | None = None
    agent_extension: str | None = None
    ringing_at_ms: Millis | None = None
    answered_at_ms: Millis | None = None
    ended_at_ms: Millis | None = None
    cdr_received_at_ms: Millis | None = None
    has_cdr: bool = False
    live_events: Annotated[int, msgspec.Meta(ge=0)] = 0
    last_event_at_ms: Millis | None = None


class LiveCall(msgspec.Struct, frozen=True, kw_only=True):
    """``callstream.live-calls``: a call in progress; a tombstone (null value) ends it."""

    call_id: CallId
    phase: Literal["ringing", "answered"]
    direction: Direction | None = None
    customer_number: str | None = None
    hotline: str | None = None
    agent_extension: str | None = None
    ringing_at_ms: Millis | None = None
    answered_at_ms: Millis | None = None
    updated_at_ms: Millis


class CompletedCall(msgspec.Struct, frozen=True, kw_only=True):
    """``callstream.calls-completed``: one per call; a correction carries a higher revision."""

    call_id: CallId
    revision: Revision
    source: Source
    outcome: Outcome
    direction: Direction | None = None
    customer_number: str | None = None
    hotline: str | None = None
    agent_extension: str | None = None
    agent_name: str | None = None
    started_at_ms: Millis | None = None
    answered_at_ms: Millis | None = None
    ended_at_ms: Millis | None = None
    ring_seconds: Secs | None = None
    talk_seconds: Secs | None = None
    duration_seconds: Secs | None = None
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None
    ended_by: str | None = None
    recording_url: str | None = None
