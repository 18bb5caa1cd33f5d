"""One input record through the fold, bytes in and bytes out: what the Faust agent does per
record, kept pure so it is tested without a broker.

A record that does not parse becomes a ``omicall.rejected`` record with the reason; it never
raises into the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from callstream.processors.callstate import (
    FoldSettings,
    Output,
    PublishCompleted,
    apply,
    completed_call,
    deadline_ms,
    expire,
)
from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.errors import WebhookParseError
from callstream.schemas.parse import parse_webhook
from callstream.schemas.rejected import rejected_webhook
from callstream.schemas.topics import REJECTED

_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(CallState).decode


class _Due(msgspec.Struct):
    """The two fields of a stored ``CallState`` its deadline depends on."""

    status: str
    updated_at_ms: int


_decode_due = msgspec.json.Decoder(_Due).decode

# What an input record did: changed its call's state, changed nothing (a duplicate, an old
# event, a command for a call gone), or did not parse (published to omicall.rejected).
Outcome = Literal["changed", "unchanged", "rejected"]


@dataclass(frozen=True, slots=True)
class Record:
    """A record to produce: logical topic name, key, value (``None``: a tombstone)."""

    topic: str
    key: bytes
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one input: the call's new stored state (``None``: unchanged), records,
    and whether that state is open (not completed: the timer checks it once its deadline
    passes; always stated, since a writer that forgot it would hide an open call from the
    timer)."""

    call_id: str | None
    stored: bytes | None
    records: list[Record]
    is_open: bool
    # When the step changed the call's completed record (and so re-publishes it): the record
    # before (None: not completed) and after. The metrics count a call by it
    # (processors/callmetrics/); both None when it did not change.
    completed_before: CompletedCall | None = None
    completed_after: CompletedCall | None = None
    # Whether the table held a state of the call before, as the fold read it (None: not
    # known, the sink reads it again): the table's row count then needs no second read. A
    # rows gauge off by one until the next full count, if a command deletes the call between
    # that read and the write.
    replaces: bool | None = None

    @property
    def outcome(self) -> Outcome:
        if self.stored is not None:
            return "changed"
        if any(record.topic == REJECTED for record in self.records):
            return "rejected"
        return "unchanged"


def decode_state(stored: bytes) -> CallState:
    return _decode_state(stored)


def stored_deadline_ms(stored: bytes, settings: FoldSettings) -> tuple[int, bool]:
    """(next deadline, completed?) of a stored state, decoding only the two fields it needs:
    the timer's full scan reads every state in the table, and the agent notes the deadline of
    each open state it writes; a full decode of each would be most of their cost."""
    due = _decode_due(stored)
    return deadline_ms(due.status, due.updated_at_ms, settings), due.status == "completed"


def _records(outputs: list[Output], new: CallState, stored: bytes) -> list[Record]:
    """The outputs as records; the new state's (``callstream.call-state``) is ``stored`` as is."""
    return [
        Record(
            out.topic,
            out.key.encode(),
            stored if out.value is new else None if out.value is None else _encode(out.value),
        )
        for out in outputs
    ]


def fold_record(load: Callable[[str], bytes | None], value: bytes, received_at_ms: int) -> Step:
    """Parse ``value`` (a provider webhook as received) and fold it into its call's state.

    ``load(call_id)`` gives the call's stored state, or None for a call not seen yet.
    """
    try:
        webhook = parse_webhook(value)
    except WebhookParseError as refused:
        rejected = rejected_webhook(refused, value, received_at_ms)
        key = (refused.call_id or "").encode()
        record = Record(REJECTED, key, _encode(rejected))
        return Step(refused.call_id, None, [record], is_open=False)
    stored = load(webhook.call_id)
    state = decode_state(stored) if stored is not None else None
    new, outputs = apply(state, webhook.payload, received_at_ms)
    if not outputs:
        return Step(webhook.call_id, None, [], is_open=False)
    return _changed(webhook.call_id, state, new, outputs)


def expire_stored(stored: bytes, now_ms: int, settings: FoldSettings) -> Step:
    """The timer's step for one stored call: complete it without its CDR when overdue."""
    state = decode_state(stored)
    new, outputs = expire(state, now_ms, settings)
    if not outputs:
        return Step(state.call_id, None, [], is_open=False)
    return _changed(state.call_id, state, new, outputs)


def _completed(state: CallState | None) -> CompletedCall | None:
    return None if state is None or state.status != "completed" else completed_call(state)


def _changed(call_id: str, old: CallState | None, new: CallState, outputs: list[Output]) -> Step:
    encoded = _encode(new)
    after = next((out.call for out in outputs if isinstance(out, PublishCompleted)), None)
    return Step(
        call_id,
        encoded,
        _records(outputs, new, encoded),
        is_open=new.status != "completed",
        completed_before=None if after is None else _completed(old),
        completed_after=after,
        replaces=old is not None,
    )
