"""The query API's parameters, read and checked without I/O: every mistake is a
:class:`BadRequest` naming the parameter and the reason (the view answers 400).

``/metrics/{dimension}[/{value}]``: ``window`` one of the windows the worker counts
(default ``1h``, else the first it counts); ``from`` and ``to`` as epoch milliseconds or ISO
8601 (a time without a zone is UTC; a date alone is its midnight, UTC); the windows whose start
is in ``[from, to)``.
Without ``from`` and ``to``, the last 24 hours; with one of them, the 24 hours after ``from``
or before ``to``. Times before 1970 read as 1970. A range may span at most
:data:`MAX_WINDOWS` windows (a week of minute windows, 105 days of 15-minute ones, 420 days of
hours). ``format`` is ``json`` (default) or ``csv``. A parameter given twice, or one the route
does not know, is refused too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args

from callstream.schemas.metrics import Dimension, Window

DIMENSIONS: tuple[str, ...] = get_args(Dimension)
WINDOWS: tuple[str, ...] = get_args(Window)
ALL = "all"  # the dimension without values: its one value is "all"
DEFAULT_WINDOW = "1h"
DEFAULT_SPAN_MS = 86_400_000
MAX_WINDOWS = 10_080
FORMATS = ("json", "csv")
METRICS_PARAMETERS = ("window", "from", "to", "format")
LIVE_PARAMETERS = ("hotline", "agent")
# The latest time a window may start at: the end of year 9999, as far as ISO 8601 reaches.
MAX_TIME_MS = 253_402_300_799_999
EPOCH_MS_DIGITS = 15
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_DIGITS = re.compile(r"[0-9]+")
_WINDOW = re.compile(r"([1-9][0-9]*)([mhd])")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


class BadRequest(ValueError):
    """A parameter the query API refuses: which one, and why (shown to the client)."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True)
class MetricsQuery:
    """What ``/metrics/{dimension}[/{value}]`` asks for: ``value`` ``None`` is every value."""

    dimension: str
    value: str | None
    window: str
    start_ms: int
    end_ms: int
    format: str = "json"


@dataclass(frozen=True)
class LiveQuery:
    """``/calls/live``'s filters: ``None`` takes every hotline (agent)."""

    hotline: str | None = None
    agent: str | None = None


def window_span_ms(window: str) -> int:
    """The nominal length of a window named like ``15m``, ``1h``, ``1d``."""
    match = _WINDOW.fullmatch(window)
    if match is None:
        raise ValueError(f"not a window name: {window!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def single_values(pairs: Iterable[tuple[str, str]], known: Collection[str]) -> dict[str, str]:
    """The query's parameters by name; one the route does not know, or one given twice, is
    refused."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in known:
            raise BadRequest(name, f"unknown parameter; this route takes {', '.join(known)}")
        if name in values:
            raise BadRequest(name, "given more than once")
        values[name] = value
    return values


def parse_time(parameter: str, text: str) -> int:
    """Epoch milliseconds of ``text``: digits are epoch milliseconds, anything else ISO 8601
    (no zone: UTC). Clamped to [1970, the end of 9999]."""
    if _DIGITS.fullmatch(text):
        if len(text) > EPOCH_MS_DIGITS:
            raise BadRequest(parameter, f"epoch milliseconds of at most {EPOCH_MS_DIGITS} digits")
        return min(int(text), MAX_TIME_MS)
    try:
        moment = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lowercase t and z
    except ValueError:
        raise BadRequest(
            parameter,
            f"{text!r} is neither epoch milliseconds nor an ISO 8601 date or time "
            "(e.g. 2025-01-31T08:00:00+07:00)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, min((moment - _EPOCH) // _ONE_MS, MAX_TIME_MS))


def parse_metrics_query(
    dimension: str,
    value: str | None,
    pairs: Iterable[tuple[str, str]],
    now_ms: int,
    windows: Collection[str] = WINDOWS,
) -> MetricsQuery:
    """Check ``/metrics/{dimension}[/{value}]``'s path and query (``pairs``); ``now_ms`` ends the
    default range."""
    if dimension not in DIMENSIONS:
        raise BadRequest("dimension", f"{dimension!r} is not one of {', '.join(DIMENSIONS)}")
    if dimension == ALL:
        if value is not None:
            raise BadRequest("value", "the dimension 'all' takes no value")
        value = ALL
    params = single_values(pairs, METRICS_PARAMETERS)
    default = DEFAULT_WINDOW if DEFAULT_WINDOW in windows else next(iter(windows))
    window = params.get("window", default)
    if window not in windows:
        raise BadRequest("window", f"{window!r} is not one of {', '.join(windows)}")
    output = params.get("format", "json")
    if output not in FORMATS:
        raise BadRequest("format", f"{output!r} is not one of {', '.join(FORMATS)}")
    start_ms, end_ms = _range(params.get("from"), params.get("to"), now_ms)
    if (end_ms - start_ms) > MAX_WINDOWS * window_span_ms(window):
        raise BadRequest(
            "from,to",
            f"the range spans more than {MAX_WINDOWS} windows of {window}: "
            "ask for a shorter range or a longer window",
        )
    return MetricsQuery(dimension, value, window, start_ms, end_ms, output)


def _range(start: str | None, end: str | None, now_ms: int) -> tuple[int, int]:
    """``[from, to)`` in epoch ms: 24 hours from the one given, or up to now."""
    start_ms = None if start is None else parse_time("from", start)
    end_ms = None if end is None else parse_time("to", end)
    if start_ms is None:
        end_ms = now_ms if end_ms is None else end_ms
        return max(0, end_ms - DEFAULT_SPAN_MS), end_ms
    if end_ms is None:
        return start_ms, min(start_ms + DEFAULT_SPAN_MS, MAX_TIME_MS)
    if start_ms > end_ms:
        raise BadRequest("from,to", "from is after to")
    return start_ms, end_ms


def parse_live_query(pairs: Iterable[tuple[str, str]]) -> LiveQuery:
    """``/calls/live``'s optional ``hotline`` and ``agent`` (an extension); neither empty."""
    params = single_values(pairs, LIVE_PARAMETERS)
    for name, given in params.items():
        if not given:
            raise BadRequest(name, "empty; leave the parameter out to take every value")
    return LiveQuery(hotline=params.get("hotline"), agent=params.get("agent"))
