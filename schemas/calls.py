"""What the processors publish about calls: joined state, the live view, the completed call.

Times are epoch milliseconds, durations seconds; ``None`` where the inputs do not say (a call
without a CDR, or without live events). Ids are strings. The processor issues complete the
folds that fill these; fields may be added, never removed or narrowed (docs/schemas.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from callstream.schemas.omicall import CallDetailRecord, CallId, Direction, LiveCallEvent

Millis = Annotated[int, msgspec.Meta(ge=0, description="epoch milliseconds")]
Secs = Annotated[float, msgspec.Meta(ge=0, description="seconds")]
Revision = Annotated[
    int, msgspec.Meta(ge=1, description="how many distinct events the record folds; grows")
]
CallStatus = Literal["ringing", "answered", "ended", "completed"]
Outcome = Literal["answered", "missed", "abandoned", "unknown"]
Source = Literal["live", "cdr", "both"]


class CallState(msgspec.Struct, frozen=True, kw_only=True):
    """``callstream.call-state``: everything known about one call so far (compacted by id).

    The live timeline (``*_at_ms``) comes from the live events, ``cdr`` from the final record;
    the derived fields follow the rules of docs/call-state.md. Everything but ``revision`` and
    ``updated_at_ms`` is a function of the set of events applied (and, until a CDR arrives, of
    whether the call timed out), whatever their order.
    """

    call_id: CallId
    revision: Revision  # of the CompletedCall published (or to be published) for this state
    status: CallStatus
    direction: Direction | None = None
    hotline: str | None = None
    agent: str | None = None  # the agent's extension (sip_user / the live from_number)
    agent_name: str | None = None
    customer_number: str | None = None
    ringing_at_ms: Millis | None = None
    answered_at_ms: Millis | None = None
    hangup_at_ms: Millis | None = None
    cdr: CallDetailRecord | None = None
    # The earliest live event (ringing, then answered, then hangup; then by date_time): the
    # source of the live direction and numbers.
    first_event: LiveCallEvent | None = None
    outcome: Outcome | None = None
    ring_sec: Secs | None = None
    ring_sec_estimated: bool = False  # from the CDR's duration - answer_sec, not the timeline
    talk_sec: Secs | None = None
    bill_sec: Secs | None = None
    cost: Annotated[float, msgspec.Meta(ge=0)] | None = None
    cdr_missing: bool = False  # completed without a CDR (cdr_timeout or stale_timeout)
    live_missing: bool = False  # a CDR with no live event before it
    events_seen: list[str] = msgspec.field(default_factory=list)  # sorted event fingerprints
    updated_at_ms: Millis  # our clock: when an event or a timer last changed the state


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
    ring_seconds_estimated: bool = False  # from the CDR's duration - answer_sec
    talk_seconds: Secs | None = None
    duration_seconds: Secs | None = None
    price: Annotated[float, msgspec.Meta(ge=0)] | None = None
    billed_seconds: Secs | None = None  # the CDR's bill_sec
    ended_by: str | None = None
    recording_url: str | None = None
    cdr_missing: bool = False  # completed by a timeout, without a CDR
    live_missing: bool = False  # completed from a CDR alone, without live events
