"""The call-state fold: one call's live events and CDR joined into one :class:`CallState`.

Pure: no I/O and no clock; time comes in as arguments. :func:`apply` folds one event,
:func:`expire` and :func:`evictable` are what a timer calls. Each returns the outputs to publish.
Every rule (derived fields, outcome, status, timers, revisions) is in docs/call-state.md.

The state's inputs form a join-semilattice: each event is merged by a commutative, associative
and idempotent rule (earliest, latest, union), so the same set of events gives the same state in
any order, and an event applied twice changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import msgspec

from callstream.processors.cdr_reading import (
    cdr_answered,
    cdr_billed_talk_sec,
    cdr_ring_sec,
    cdr_talk_sec,
)
from callstream.schemas.calls import CallState, CallStatus, CompletedCall, LiveCall, Outcome
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED, LIVE_CALLS

Event = LiveCallEvent | CallDetailRecord

_MINUTE_MS = 60_000
_HOUR_MS = 60 * _MINUTE_MS
_DAY_MS = 24 * _HOUR_MS
ENDED_BY_CUSTOMER = "end_call_by_customer"
_RANK = {"ringing": 0, "answered": 1, "hangup": 2}


@dataclass(frozen=True, slots=True)
class FoldSettings:
    """The timers of the fold, in milliseconds.

    ``cdr_timeout_ms`` (15 min): a call that hung up completes without its CDR this long after
    its last event. ``stale_timeout_ms`` (4 h): the same for a call that never hung up.
    ``retention_ms`` (7 days): a completed call leaves the table this long after its last change.
    """

    cdr_timeout_ms: int = 15 * _MINUTE_MS
    stale_timeout_ms: int = 4 * _HOUR_MS
    retention_ms: int = 7 * _DAY_MS


@dataclass(frozen=True, slots=True)
class PublishState:
    """The call's new state, for ``callstream.call-state`` (compacted by call id)."""

    topic: ClassVar[str] = CALL_STATE
    state: CallState

    @property
    def key(self) -> str:
        return self.state.call_id

    @property
    def value(self) -> CallState:
        return self.state


@dataclass(frozen=True, slots=True)
class PublishCompleted:
    """A completed call, or its correction (a higher revision)."""

    topic: ClassVar[str] = CALLS_COMPLETED
    call: CompletedCall

    @property
    def key(self) -> str:
        return self.call.call_id

    @property
    def value(self) -> CompletedCall:
        return self.call


@dataclass(frozen=True, slots=True)
class PublishLive:
    """The call is in progress: an upsert of ``callstream.live-calls``."""

    topic: ClassVar[str] = LIVE_CALLS
    call: LiveCall

    @property
    def key(self) -> str:
        return self.call.call_id

    @property
    def value(self) -> LiveCall:
        return self.call


@dataclass(frozen=True, slots=True)
class EndLive:
    """The call is no longer in progress: a tombstone (null value) on ``callstream.live-calls``."""

    topic: ClassVar[str] = LIVE_CALLS
    call_id: str

    @property
    def key(self) -> str:
        return self.call_id

    @property
    def value(self) -> None:
        return None


Output = PublishState | PublishCompleted | PublishLive | EndLive
DEFAULT_SETTINGS = FoldSettings()


class _Inputs(NamedTuple):
    """What the events contribute; the rest of a CallState is derived from these."""

    first_event: LiveCallEvent | None
    ringing_at_ms: int | None
    answered_at_ms: int | None
    hangup_at_ms: int | None
    cdr: CallDetailRecord | None
    events_seen: tuple[str, ...]


_NO_INPUTS = _Inputs(None, None, None, None, None, ())


def apply(
    state: CallState | None, event: Event, received_at_ms: int
) -> tuple[CallState, list[Output]]:
    """Fold one event of the call into its state; ``state`` is ``None`` for a new call.

    ``received_at_ms`` (our clock) only moves ``updated_at_ms``, which the timers count from.
    Returns the new state and what to publish; an event that adds nothing returns ``state``
    itself and no outputs.
    """
    if state is not None and event.call_id != state.call_id:
        raise ValueError(f"event of call {event.call_id!r} applied to call {state.call_id!r}")
    before = _NO_INPUTS if state is None else _inputs(state)
    after = _join(before, event)
    if state is not None and after == before:
        return state, []
    cdr_missing = state is not None and state.cdr_missing and after.cdr is None
    updated = received_at_ms if state is None else max(state.updated_at_ms, received_at_ms)
    return _publish(state, _derive(event.call_id, after, cdr_missing, updated))


def expire(
    state: CallState, now_ms: int, settings: FoldSettings = DEFAULT_SETTINGS
) -> tuple[CallState, list[Output]]:
    """Complete a call whose CDR is overdue, with ``cdr_missing=True``; else change nothing.

    Overdue: ``cdr_timeout_ms`` after the last event once the call hung up, ``stale_timeout_ms``
    after it when it did not. A CDR that comes later corrects the call (a higher revision).
    """
    if state.status == "completed":
        return state, []
    timeout = settings.cdr_timeout_ms if state.status == "ended" else settings.stale_timeout_ms
    if now_ms - state.updated_at_ms < timeout:
        return state, []
    updated = max(state.updated_at_ms, now_ms)
    return _publish(state, _derive(state.call_id, _inputs(state), True, updated))


def evictable(
    state: CallState, now_ms: int, retention_ms: int = DEFAULT_SETTINGS.retention_ms
) -> bool:
    """Whether a completed call may leave the table: ``retention_ms`` after its last change."""
    return state.status == "completed" and now_ms - state.updated_at_ms >= retention_ms


def next_deadline_ms(state: CallState, settings: FoldSettings = DEFAULT_SETTINGS) -> int:
    """When :func:`expire` (or, for a completed call, :func:`evictable`) will next act on it.

    Only a change of the state moves the deadline, so a timer may index calls by it.
    """
    return deadline_ms(state.status, state.updated_at_ms, settings)


def deadline_ms(status: str, updated_at_ms: int, settings: FoldSettings = DEFAULT_SETTINGS) -> int:
    """:func:`next_deadline_ms` from the only two fields it reads."""
    if status == "completed":
        wait = settings.retention_ms
    elif status == "ended":
        wait = settings.cdr_timeout_ms
    else:
        wait = settings.stale_timeout_ms
    return updated_at_ms + wait


def without_history(state: CallState) -> CallState:
    """``state`` without what depends on delivery order and timing: revision, updated_at_ms.

    Two folds of the same events, in any order, give equal values of this.
    """
    return msgspec.structs.replace(state, revision=1, updated_at_ms=0)


def completed_call(state: CallState) -> CompletedCall:
    """The ``callstream.calls-completed`` record of a completed state, at its revision."""
    cdr = state.cdr
    started = state.ringing_at_ms
    if started is None and cdr is not None:
        started = cdr.time_start_call * 1000
    if started is None:
        started = _min(state.answered_at_ms, state.hangup_at_ms)
    ended = state.hangup_at_ms
    if ended is None and cdr is not None:
        end_s = cdr.time_end_call
        ended = (end_s if end_s is not None else cdr.time_start_call + cdr.duration) * 1000
    duration: float | None = None
    if cdr is not None:
        duration = float(cdr.duration)
    elif started is not None and ended is not None and ended >= started:
        duration = (ended - started) / 1000
    return CompletedCall(
        call_id=state.call_id,
        revision=state.revision,
        source="live" if cdr is None else ("cdr" if state.first_event is None else "both"),
        outcome=state.outcome or "unknown",
        direction=state.direction,
        customer_number=state.customer_number,
        hotline=state.hotline,
        agent_extension=state.agent,
        agent_name=state.agent_name,
        started_at_ms=started,
        answered_at_ms=state.answered_at_ms,
        ended_at_ms=ended,
        ring_seconds=state.ring_sec,
        ring_seconds_estimated=state.ring_sec_estimated,
        talk_seconds=state.talk_sec,
        duration_seconds=duration,
        price=state.cost,
        billed_seconds=state.bill_sec,
        ended_by=None if cdr is None else cdr.endby_name,
        recording_url=None if cdr is None else cdr.recording_file_url,
        cdr_missing=state.cdr_missing,
        live_missing=state.live_missing,
    )


def live_call(state: CallState) -> LiveCall | None:
    """The ``callstream.live-calls`` value of a call in progress; ``None`` once it has ended."""
    match state.status:
        case "ringing" | "answered" as phase:
            return LiveCall(
                call_id=state.call_id,
                phase=phase,
                direction=state.direction,
                customer_number=state.customer_number,
                hotline=state.hotline,
                agent_extension=state.agent,
                ringing_at_ms=state.ringing_at_ms,
                answered_at_ms=state.answered_at_ms,
                updated_at_ms=state.updated_at_ms,
            )
        case _:
            return None


def fingerprint(event: Event) -> str:
    """The name an event has in ``events_seen``: ``<state>:<date_time>:<digest>`` or
    ``cdr:<version>:<digest>``.

    A CDR's version is its ``last_updated_date``, else ``created_date``, else ``time_start_call``
    (seconds, prefixed ``s``). The digest (8 hex digits of BLAKE2b) is of the event's content
    without ``send_num_retry``, which a provider's re-send bumps: so a re-send has the name the
    event has, and two different events (two ``ringing`` of one ``date_time`` with other numbers)
    have two, and ``events_seen`` counts the distinct events a state folds (the revision).
    """
    if isinstance(event, LiveCallEvent):
        return f"{event.state}:{event.date_time}:{_digest(event)}"
    if event.last_updated_date is not None:
        version = str(event.last_updated_date)
    elif event.created_date is not None:
        version = str(event.created_date)
    else:
        version = f"s{event.time_start_call}"
    if event.send_num_retry is not None:
        event = msgspec.structs.replace(event, send_num_retry=None)
    return f"cdr:{version}:{_digest(event)}"


def _digest(event: Event) -> str:
    return hashlib.blake2b(_encode(event), digest_size=4).hexdigest()


# --- the join -------------------------------------------------------------------------------


def _inputs(state: CallState) -> _Inputs:
    return _Inputs(
        state.first_event,
        state.ringing_at_ms,
        state.answered_at_ms,
        state.hangup_at_ms,
        state.cdr,
        tuple(state.events_seen),
    )


def _join(inputs: _Inputs, event: Event) -> _Inputs:
    name = fingerprint(event)
    seen = inputs.events_seen
    if name not in seen:
        seen = tuple(sorted((*seen, name)))
    if isinstance(event, CallDetailRecord):
        return inputs._replace(cdr=_newer_cdr(inputs.cdr, event), events_seen=seen)
    first = _earlier_event(inputs.first_event, event)
    at = event.date_time
    ringing, answered, hangup = inputs.ringing_at_ms, inputs.answered_at_ms, inputs.hangup_at_ms
    if event.state == "ringing":
        ringing = _min(ringing, at)
    elif event.state == "answered":
        answered = _min(answered, at)
    else:
        hangup = at if hangup is None else max(hangup, at)
    return _Inputs(first, ringing, answered, hangup, inputs.cdr, seen)


def _earlier_event(old: LiveCallEvent | None, new: LiveCallEvent) -> LiveCallEvent:
    """The earlier of two live events: by state, then date_time, then (a tie) their encoding."""
    if old is None:
        return new
    old_key, new_key = (_RANK[old.state], old.date_time), (_RANK[new.state], new.date_time)
    if old_key != new_key:
        return new if new_key < old_key else old
    return new if old != new and _encode(new) < _encode(old) else old


def _newer_cdr(old: CallDetailRecord | None, new: CallDetailRecord) -> CallDetailRecord:
    """The newer of two CDRs: by last_updated_date, created_date, fewer re-sends, encoding."""
    if old is None:
        return new

    def key(cdr: CallDetailRecord) -> tuple[int, int, int]:
        updated, created = cdr.last_updated_date, cdr.created_date
        return (
            -1 if updated is None else updated,
            -1 if created is None else created,
            -(cdr.send_num_retry or 0),
        )

    old_key, new_key = key(old), key(new)
    if old_key != new_key:
        return new if new_key > old_key else old
    return new if old != new and _encode(new) > _encode(old) else old


def _encode(value: msgspec.Struct) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


# --- the derived fields -----------------------------------------------------------------------


def _derive(call_id: str, inputs: _Inputs, cdr_missing: bool, updated_at_ms: int) -> CallState:
    first, cdr = inputs.first_event, inputs.cdr
    direction = cdr.direction if cdr is not None else first.direction if first else None
    status = _status(inputs, cdr_missing)
    ended = status in ("ended", "completed")
    answered = _answered(inputs)
    ring_sec, estimated = _ring_sec(inputs, answered)
    customer, agent, hotline = _parties(first, cdr, inbound=direction == "inbound")
    return CallState(
        call_id=call_id,
        revision=content_revision(inputs.events_seen),
        status=status,
        direction=direction,
        hotline=hotline,
        agent=agent,
        agent_name=None if cdr is None else cdr.agent_name,
        customer_number=customer,
        ringing_at_ms=inputs.ringing_at_ms,
        answered_at_ms=inputs.answered_at_ms,
        hangup_at_ms=inputs.hangup_at_ms,
        cdr=cdr,
        first_event=first,
        outcome=_outcome(cdr, direction, answered) if ended else None,
        ring_sec=ring_sec,
        ring_sec_estimated=estimated,
        talk_sec=_talk_sec(inputs, ended=ended, answered=answered),
        bill_sec=None if cdr is None else float(cdr.bill_sec),
        cost=None if cdr is None else cdr.call_out_price,
        cdr_missing=cdr_missing,
        live_missing=cdr is not None and first is None,
        events_seen=list(inputs.events_seen),
        updated_at_ms=updated_at_ms,
    )


def _status(inputs: _Inputs, cdr_missing: bool) -> CallStatus:
    if inputs.cdr is not None or cdr_missing:
        return "completed"
    if inputs.hangup_at_ms is not None:
        return "ended"
    if inputs.answered_at_ms is not None:
        return "answered"
    return "ringing"


def _answered(inputs: _Inputs) -> bool:
    """The CDR's word when it has one (cdr_reading.cdr_answered), else an ``answered`` event."""
    said = None if inputs.cdr is None else cdr_answered(inputs.cdr)
    return inputs.answered_at_ms is not None if said is None else said


def _ring_sec(inputs: _Inputs, answered: bool) -> tuple[float | None, bool]:
    """Seconds of ringing and whether they are estimated from the CDR."""
    ringing, cdr = inputs.ringing_at_ms, inputs.cdr
    ring_end = inputs.answered_at_ms if answered else inputs.hangup_at_ms
    if ringing is not None and ring_end is not None and ring_end >= ringing:
        return (ring_end - ringing) / 1000, False
    if cdr is not None:
        return cdr_ring_sec(cdr, answered=answered), True
    return None, False


def _talk_sec(inputs: _Inputs, *, ended: bool, answered: bool) -> float | None:
    """The CDR's talk time, else the timeline's, else the CDR's billed seconds; 0 unanswered."""
    if not answered:
        return 0.0 if ended else None
    cdr, answered_at, hangup = inputs.cdr, inputs.answered_at_ms, inputs.hangup_at_ms
    stated = None if cdr is None else cdr_talk_sec(cdr)
    if stated is not None:
        return stated
    if answered_at is not None and hangup is not None and hangup >= answered_at:
        return (hangup - answered_at) / 1000
    return None if cdr is None else cdr_billed_talk_sec(cdr)


def _outcome(cdr: CallDetailRecord | None, direction: str | None, answered: bool) -> Outcome:
    if answered:
        return "answered"
    by_customer = cdr is None or cdr.endby_name in (None, ENDED_BY_CUSTOMER)
    return "abandoned" if direction == "inbound" and by_customer else "missed"


def _parties(
    first: LiveCallEvent | None, cdr: CallDetailRecord | None, *, inbound: bool
) -> tuple[str | None, str | None, str | None]:
    """The customer's number, the agent's extension and the hotline: the CDR's, else live; an
    empty one is none (a local call has no hotline, and sends "")."""
    live: tuple[str | None, str | None, str | None] = (None, None, None)
    if first is not None:
        live = (
            _given(first.from_number if inbound else first.to_number),
            _given(first.to_number if inbound else first.from_number),
            _given(first.hotline),
        )
    if cdr is None:
        return live
    customer = _given(
        cdr.phone_number,
        cdr.from_number if inbound else cdr.destination_number,
        None if inbound else cdr.to_number,
    )
    return (
        _given(customer, live[0]),
        _given(cdr.sip_user, live[1]),
        _given(cdr.hotline, live[2]),
    )


def _given(*values: str | None) -> str | None:
    """The first value that is neither ``None`` nor empty."""
    for value in values:
        if value:
            return value
    return None


# --- what to publish --------------------------------------------------------------------------


def content_revision(events_seen: Sequence[str]) -> int:
    """The revision of a record that folds these events: how many distinct ones it holds.

    It grows with what the record holds, not with each publication, so a record folded from
    fewer events (what a killed worker published before a replay read them in another order)
    ranks below the call's final record (docs/call-state.md, Timers and revisions).
    """
    return max(1, len(events_seen))


def _publish(prev: CallState | None, new: CallState) -> tuple[CallState, list[Output]]:
    """Outputs of the change ``prev`` -> ``new``; sets the revision of a correction.

    A completed call is published when it completes, then again whenever it folds one more
    distinct event (its record may change: a CDR after a timer completion, a newer CDR, a live
    event folded after the CDR), at :func:`content_revision`. So the call's highest revision is
    the record of its latest state, in any order of delivery, above any record folded from
    fewer events. (One above the last should a change come with no new name: two events of one
    digest, 1 in 4 billion.)
    """
    completed: CompletedCall | None = None
    if new.status == "completed":
        view = completed_call(new)
        if prev is None or prev.status != "completed":
            completed = view
        else:
            changed = msgspec.structs.replace(view, revision=prev.revision) != completed_call(prev)
            revision = max(new.revision, prev.revision + changed)
            new = msgspec.structs.replace(new, revision=revision)
            if revision != prev.revision:
                completed = msgspec.structs.replace(view, revision=revision)
    outputs: list[Output] = [PublishState(new)]
    if completed is not None:
        outputs.append(PublishCompleted(completed))
    live_before = None if prev is None else live_call(prev)
    live_now = live_call(new)
    if live_now is not None:
        if live_before is None or live_now != msgspec.structs.replace(
            live_before, updated_at_ms=live_now.updated_at_ms
        ):
            outputs.append(PublishLive(live_now))
    elif live_before is not None:
        outputs.append(EndLive(new.call_id))
    return new, outputs
