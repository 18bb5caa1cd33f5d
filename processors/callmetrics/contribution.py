"""What one completed call adds to each of its windows: a function of the call alone.

Because a call's contribution depends on nothing but its completed record, a correction is
exact: the old record's contribution comes out of each window, the new one's goes in
(docs/metrics.md, Exactness). Seconds are kept as integer milliseconds and prices as integer
millionths, so sums and their reversals are exact in any order.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from callstream.processors.callmetrics.windows import MetricSettings, WindowKey, window_bounds
from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import Dimension, Window

PRICE_UNITS = 1_000_000  # a price is counted in millionths
# An agent's name labels its windows: a webhook may send one of any length (up to its body).
NAME_CHARS = 128


class CallFigures(NamedTuple):
    """One call's figures, the same in each of its windows."""

    offered: int
    answered: int
    missed: int
    abandoned: int
    within_sla: int
    ring_ms: int | None  # speed of answer: an answered call whose ring time is known
    talk_ms: int | None  # handle time: an answered call whose talk time is known
    billed_ms: int
    price_units: int
    cdr_missing: int
    live_missing: int
    agent_name: str | None


def to_ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def call_figures(call: CompletedCall, settings: MetricSettings) -> CallFigures:
    answered = call.outcome == "answered"
    ring_ms = to_ms(call.ring_seconds) if answered else None
    within = answered and ring_ms is not None and ring_ms <= settings.service_level_s * 1000
    return CallFigures(
        offered=1,
        answered=int(answered),
        missed=int(call.outcome == "missed"),
        abandoned=int(call.outcome == "abandoned"),
        within_sla=int(within),
        ring_ms=ring_ms,
        talk_ms=to_ms(call.talk_seconds) if answered else None,
        billed_ms=to_ms(call.billed_seconds) or 0,
        price_units=round((call.price or 0.0) * PRICE_UNITS),
        cdr_missing=int(call.cdr_missing),
        live_missing=int(call.live_missing),
        agent_name=call.agent_name[:NAME_CHARS] if call.agent_name else None,
    )


def dimension_values(call: CompletedCall) -> tuple[tuple[Dimension, str], ...]:
    """The dimension values a call counts under: ``all`` always, the others when known."""
    values: list[tuple[Dimension, str]] = [("all", "all")]
    for dimension, value in (
        ("hotline", call.hotline),
        ("agent", call.agent_extension),
        ("direction", call.direction),
    ):
        if value:
            values.append((dimension, value))  # type: ignore[arg-type]
    return tuple(values)


def window_keys(call: CompletedCall | None, settings: MetricSettings) -> tuple[WindowKey, ...]:
    """The windows ``call`` counts in; none for a call without a start time."""
    if call is None or call.started_at_ms is None:
        return ()
    return _keys(dimension_values(call), call.started_at_ms, settings.windows, settings.tz)


@lru_cache(maxsize=512)  # 16 keys a call, about 2 KB: the calls of the last seconds
def _keys(
    values: tuple[tuple[Dimension, str], ...],
    started_at_ms: int,
    windows: tuple[Window, ...],
    tz: ZoneInfo,
) -> tuple[WindowKey, ...]:
    """Each change of a call asks for its keys before and after (the same ones, mostly): made
    once, and the same object, so that comparing them is cheap. Each window once, though the
    settings name it twice: ``changes`` counts on unique keys."""
    starts = [
        (window, window_bounds(started_at_ms, window, tz)[0]) for window in dict.fromkeys(windows)
    ]
    return tuple(
        WindowKey(dimension, value, window, start)
        for dimension, value in values
        for window, start in starts
    )


def contribution(
    call: CompletedCall | None, settings: MetricSettings
) -> dict[WindowKey, CallFigures]:
    """Every window key of ``call`` with its figures; none for a call without a start time."""
    keys = window_keys(call, settings)
    if call is None or not keys:
        return {}
    return dict.fromkeys(keys, call_figures(call, settings))


Change = tuple[WindowKey, CallFigures | None, CallFigures | None]


def changes(
    before: CompletedCall | None, after: CompletedCall | None, settings: MetricSettings
) -> list[Change]:
    """(key, old figures, new figures) for every window whose share of the call changes,
    ``before`` and ``after`` being the call's completed record (``None``: not completed)."""
    old_keys, new_keys = window_keys(before, settings), window_keys(after, settings)
    old = call_figures(before, settings) if before is not None and old_keys else None
    new = call_figures(after, settings) if after is not None and new_keys else None
    # Most changes count a call in for the first time, or change its figures in the same
    # windows: each of its windows then changes alike.
    if not old_keys or old_keys == new_keys:
        return [] if old == new else [(key, old, new) for key in new_keys]
    if not new_keys:
        return [(key, old, None) for key in old_keys]
    was, now = dict.fromkeys(old_keys, old), dict.fromkeys(new_keys, new)
    found: list[Change] = []
    for key in was.keys() | now.keys():
        if was.get(key) != now.get(key):
            found.append((key, was.get(key), now.get(key)))
    found.sort()
    return found
