"""What the worker's query API answers beyond the topics' own values (``/calls/{call_id}`` is a
``CallState``, ``/metrics/{dimension}`` a list of ``WindowMetrics``): ``GET /calls/live``.

Fields may be added, never removed or narrowed, like the topics' (docs/schemas.md).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from callstream.schemas.calls import LiveCall, Millis

_Count = Annotated[int, msgspec.Meta(ge=0)]
_Age = Annotated[
    float,
    msgspec.Meta(ge=0, description="seconds since it started ringing, by the worker's clock"),
]


class LiveCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Calls in progress: ringing now, in conversation now, and the oldest ringing call's age."""

    ringing: _Count = 0
    in_conversation: _Count = 0
    oldest_ringing_age_s: _Age | None = None  # None: nothing rings


class LiveGroup(LiveCounts, frozen=True, kw_only=True):
    """The counts of one hotline or one agent (extension); ``value`` ``None``: calls whose
    hotline (agent) is not known yet."""

    value: str | None


class LiveCalls(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /calls/live``: the whole call centre's calls in progress (those the filters keep),
    their counts, and the counts per hotline and per agent."""

    as_of_ms: Millis  # the worker's clock, which the ages are measured by
    totals: LiveCounts
    hotlines: list[LiveGroup]
    agents: list[LiveGroup]
    calls: list[LiveCall]  # the oldest first
