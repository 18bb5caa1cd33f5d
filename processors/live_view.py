"""The calls in progress as ``callstream.live-calls`` says, and what ``GET /calls/live`` counts
in them: pure, no I/O (processors/live_feed.py feeds it from Kafka).

The topic is compacted and keyed by call id: a value is the call's latest ``LiveCall``, a
tombstone says it ended. Every worker reads the whole topic, so each answers for the whole call
centre whatever partitions it owns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import msgspec

from callstream.processors.params import LiveQuery
from callstream.schemas.calls import LiveCall
from callstream.schemas.queries import LiveCalls, LiveCounts, LiveGroup

_decode = msgspec.json.Decoder(LiveCall).decode


class LiveView:
    """The latest ``LiveCall`` of every call in progress, by call id."""

    def __init__(self) -> None:
        self._calls: dict[bytes, LiveCall] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record of the topic: a value replaces the call's, a tombstone removes it. False
        for a record that is not a live call (no key, or a value that does not decode): it is
        dropped, and so is what the view held for its key."""
        if key is None:
            return False
        if value is None:
            self._calls.pop(key, None)
            return True
        try:
            self._calls[key] = _decode(value)
        except msgspec.DecodeError:  # ValidationError is a DecodeError
            self._calls.pop(key, None)
            return False
        return True

    def clear(self) -> None:
        self._calls.clear()

    def calls(self) -> list[LiveCall]:
        return list(self._calls.values())

    def __len__(self) -> int:
        return len(self._calls)


def ringing_age_s(call: LiveCall, now_ms: int) -> float | None:
    """How long a ringing call has rung by the worker's clock, from its ringing time (else
    from when it was last seen; never below 0 when the provider's clock is ahead); ``None``
    for a call in conversation."""
    if call.phase != "ringing":
        return None
    since = call.ringing_at_ms if call.ringing_at_ms is not None else call.updated_at_ms
    return max(0, now_ms - since) / 1000


def counts(calls: Iterable[LiveCall], now_ms: int) -> LiveCounts:
    ringing = in_conversation = 0
    oldest: float | None = None
    for call in calls:
        age = ringing_age_s(call, now_ms)
        if age is None:
            in_conversation += 1
        else:
            ringing += 1
            oldest = age if oldest is None else max(oldest, age)
    return LiveCounts(ringing=ringing, in_conversation=in_conversation, oldest_ringing_age_s=oldest)


def grouped(
    calls: Iterable[LiveCall], now_ms: int, value_of: Callable[[LiveCall], str | None]
) -> list[LiveGroup]:
    """The counts per value (hotline, agent), by value; the unknown value last."""
    groups: defaultdict[str | None, list[LiveCall]] = defaultdict(list)
    for call in calls:
        groups[value_of(call)].append(call)
    ordered = sorted(groups, key=lambda value: (value is None, value or ""))
    return [
        LiveGroup(value=value, **msgspec.structs.asdict(counts(groups[value], now_ms)))
        for value in ordered
    ]


def _started(call: LiveCall) -> tuple[int, str]:
    times = (call.ringing_at_ms, call.answered_at_ms, call.updated_at_ms)
    return next(time for time in times if time is not None), call.call_id


def summarize(calls: Iterable[LiveCall], now_ms: int, query: LiveQuery) -> LiveCalls:
    """``GET /calls/live``: the calls the filters keep, oldest first, with their counts."""
    kept = sorted(
        (
            call
            for call in calls
            if (query.hotline is None or call.hotline == query.hotline)
            and (query.agent is None or call.agent_extension == query.agent)
        ),
        key=_started,
    )
    return LiveCalls(
        as_of_ms=now_ms,
        totals=counts(kept, now_ms),
        hotlines=grouped(kept, now_ms, lambda call: call.hotline),
        agents=grouped(kept, now_ms, lambda call: call.agent_extension),
        calls=kept,
    )
