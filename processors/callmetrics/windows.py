"""Tumbling windows on the call centre's local clock, and the keys that name them.

A window's bounds come from the local wall clock of ``MetricSettings.zone``: a day starts at
local midnight, an hour at the local hour. Minute windows fall on the same instants in every
zone whose offset is a whole number of minutes (all of today's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from callstream.schemas.metrics import Dimension, Window

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WINDOW_MS: dict[Window, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "1d": DAY_MS,
}
DIMENSIONS: tuple[Dimension, ...] = ("all", "hotline", "agent", "direction")
_SEPARATOR = "\x00"
# 9999-12-29T00:00Z: its windows, a day long at most, end before year 10000 in every zone.
LAST_WINDOWED_MS = 253_402_041_600_000


@dataclass(frozen=True, slots=True)
class MetricSettings:
    """What the metrics count and how long they wait.

    ``windows`` (``CALLSTREAM_METRICS_WINDOWS``, default 1m,15m,1h,1d); ``zone``
    (``CALLSTREAM_TIME_ZONE``, Asia/Ho_Chi_Minh); ``service_level_s``
    (``CALLSTREAM_SERVICE_LEVEL_S``, 20): answered within it counts towards the service level;
    ``grace_ms`` (``CALLSTREAM_METRICS_GRACE_S``, 1 h): how long after its end a window shorter
    than a day still takes calls; ``day_grace_ms`` (``CALLSTREAM_METRICS_DAY_GRACE_S``, 1 day):
    the same for day windows; ``retention_ms`` (``CALLSTREAM_METRICS_RETENTION_S``, 7 days):
    how long after its grace a window stays in the worker's tables for the query API
    (``callstream.metrics`` keeps its records for the topic's retention).
    """

    windows: tuple[Window, ...] = ("1m", "15m", "1h", "1d")
    zone: str = "Asia/Ho_Chi_Minh"
    service_level_s: float = 20.0
    grace_ms: int = HOUR_MS
    day_grace_ms: int = DAY_MS
    retention_ms: int = 7 * DAY_MS
    tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [window for window in self.windows if window not in WINDOW_MS]
        if unknown or not self.windows:
            raise ValueError(f"windows {list(self.windows)}: use some of {list(WINDOW_MS)}")
        object.__setattr__(self, "tz", ZoneInfo(self.zone))  # raises for an unknown zone

    def grace_of(self, window: Window) -> int:
        return self.day_grace_ms if WINDOW_MS[window] >= DAY_MS else self.grace_ms

    def open_for_ms(self) -> int:
        """How long after a call's start one of its windows may still take it: the longest
        window and its grace (a day's window may be 25 hours long)."""
        return max(
            WINDOW_MS[window] + HOUR_MS * (window == "1d") + self.grace_of(window)
            for window in self.windows
        )


class WindowKey(NamedTuple):
    """One window of one dimension value: the unit the metrics are kept and published by."""

    dimension: Dimension
    value: str
    window: Window
    start_ms: int

    def topic_key(self) -> str:
        """Its key on ``callstream.metrics``: ``<dimension>:<value>:<window>:<start>``."""
        return f"{self.dimension}:{self.value}:{self.window}:{self.start_ms}"

    def table_key(self) -> bytes:
        """Its key in the worker's tables: fields joined by NUL, the start zero-padded, so one
        dimension's (and one value's) windows sort together and by start."""
        return _table_key(self)

    @classmethod
    def from_table_key(cls, key: bytes) -> WindowKey:
        """The key of :meth:`table_key`; a value holding NUL (a webhook may send one) too."""
        dimension, rest = key.decode().split(_SEPARATOR, 1)
        value, window, start = rest.rsplit(_SEPARATOR, 2)
        return cls(dimension, value, window, int(start))  # type: ignore[arg-type]


@lru_cache(maxsize=4096)
def _table_key(key: WindowKey) -> bytes:
    """Every change of a call asks it of each of its windows: a few are live at a time."""
    fields = (key.dimension, key.value, key.window, f"{key.start_ms:015d}")
    return _SEPARATOR.join(fields).encode()


def dimension_key(dimension: str) -> bytes:
    """The key a dimension's share updates and windows go by: one partition holds all of them
    (docs/metrics.md)."""
    return dimension.encode()


def table_prefix(dimension: str, value: str | None = None) -> bytes:
    """The table-key prefix of a dimension's windows, or of one value's."""
    parts = [dimension] if value is None else [dimension, value]
    return (_SEPARATOR.join(parts) + _SEPARATOR).encode()


def window_bounds(at_ms: int, window: Window, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) in epoch ms of the ``window`` holding instant ``at_ms`` in zone ``tz``: the
    run of instants around it whose local clock reads the same window (docs/metrics.md). A clock
    change inside a day makes it 23 or 25 hours; hours and minutes the clock repeats start a
    window anew unless their run goes on (an hour that ends as the clock turns back to it).

    An instant after :data:`LAST_WINDOWED_MS` (a webhook may give any time up to the end of
    year 9999) is in the last window that ends before then, stretched to hold it: ``datetime``
    cannot read the local clock past year 9999."""
    held = _last_bounds.get((window, tz))
    if held is not None and held[0] <= at_ms < held[1]:
        return held
    size = WINDOW_MS[window]
    when = min(at_ms, LAST_WINDOWED_MS)
    label = _label(when, size, tz)
    bounds = _run_start(when, label, size, tz), max(_run_end(when, label, size, tz), at_ms + 1)
    if at_ms <= LAST_WINDOWED_MS:  # the last window's end depends on the instant past it
        _last_bounds[(window, tz)] = bounds
    return bounds


# The window last found of each size and zone: the runs of instants a window is split the
# timeline into, so an instant inside one is in it; calls come mostly in time order, and
# reading the local clock costs several datetime conversions.
_last_bounds: dict[tuple[Window, ZoneInfo], tuple[int, int]] = {}


def _label(at_ms: int, size: int, tz: ZoneInfo) -> int:
    """The local wall-clock start (ms) of the window reading at ``at_ms``."""
    local_ms = at_ms + _offset_ms(at_ms, tz)
    return local_ms - local_ms % size


def _run_start(at_ms: int, label: int, size: int, tz: ZoneInfo) -> int:
    offset = _offset_ms(at_ms, tz)
    start = label - offset  # where the run starts if the offset held since
    if _offset_ms(start, tz) != offset:  # the clock changed in between: the run starts there
        start = _changed(start, at_ms, tz)
    if _label(start - 1, size, tz) == label:  # ... unless the clock read the window before it
        return _run_start(start - 1, label, size, tz)
    return start


def _run_end(at_ms: int, label: int, size: int, tz: ZoneInfo) -> int:
    offset = _offset_ms(at_ms, tz)
    end = label + size - offset
    if _offset_ms(end - 1, tz) != offset:
        end = _changed(at_ms, end - 1, tz, to=False)
    if _label(end, size, tz) == label:  # the clock turned back into the window: it goes on
        return _run_end(end, label, size, tz)
    return end


def _changed(low_ms: int, high_ms: int, tz: ZoneInfo, *, to: bool = True) -> int:
    """The first instant after ``low_ms`` whose UTC offset differs from ``low_ms``'s (``to``:
    equals ``high_ms``'s, the same when the offset changed once), to the second: clocks change
    on whole seconds. Offsets differ at the two ends."""
    target = _offset_ms(high_ms if to else low_ms, tz)
    low_s, high_s = low_ms // 1000, high_ms // 1000
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if (_offset_ms(middle * 1000, tz) == target) == to:
            high_s = middle
        else:
            low_s = middle
    return high_s * 1000


def _offset_ms(at_ms: int, tz: ZoneInfo) -> int:
    return _ms(datetime.fromtimestamp(at_ms // 1000, UTC).astimezone(tz).utcoffset())


def _ms(offset: timedelta | None) -> int:
    if offset is None:  # never, for a datetime aware of a ZoneInfo
        raise ValueError("no UTC offset")
    return offset // timedelta(milliseconds=1)


def window_end(key: WindowKey, settings: MetricSettings) -> int:
    """The end (exclusive, epoch ms) of the window ``key`` names."""
    return _end(key.start_ms, key.window, settings.tz)


@lru_cache(maxsize=4096)
def _end(start_ms: int, window: Window, tz: ZoneInfo) -> int:
    """Every change of a call asks it of each of its windows (``is_late``): a few are live."""
    return window_bounds(start_ms, window, tz)[1]


def is_late(key: WindowKey, now_ms: int, settings: MetricSettings) -> bool:
    """Whether a change to the window comes after its grace: it is then dropped."""
    return now_ms > window_end(key, settings) + settings.grace_of(key.window)


@lru_cache(maxsize=4096)  # 0.33 KB a key: the shares of the windows still changing
def share_key(key: WindowKey, partition: int) -> bytes:
    """A share's key in the ``metric-shares`` table: the window's, then the input partition
    (a store may hold several partitions: keys must be unique across them)."""
    return key.table_key() + _SEPARATOR.encode() + str(partition).encode()


def split_share_key(raw: bytes) -> tuple[WindowKey, int]:
    window, _, partition = raw.rpartition(_SEPARATOR.encode())
    return WindowKey.from_table_key(window), int(partition)


def share_expired(raw: bytes, now_ms: int, settings: MetricSettings) -> bool:
    """A share past its window's grace: no change can reach it any more."""
    return is_late(split_share_key(raw)[0], now_ms, settings)


def window_expired(raw: bytes, now_ms: int, settings: MetricSettings) -> bool:
    """:func:`retention_over` of the window under table key ``raw``."""
    return retention_over(WindowKey.from_table_key(raw), now_ms, settings)


def retention_over(key: WindowKey, now_ms: int, settings: MetricSettings) -> bool:
    """A window past its grace and its retention: it leaves the worker's tables."""
    return is_late(key, now_ms - settings.retention_ms, settings)
