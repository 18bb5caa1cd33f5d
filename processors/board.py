"""What the wallboard shows, as plain JSON-ready sections, and the patches between two of
them: pure, no I/O (processors/board_stream.py pushes them as Server-Sent Events).

A board has four sections, each a mapping of keys to JSON values, so that a change is a patch
of the keys set and the keys deleted per section, which the page applies as it is:

- ``meta``: the call centre's time zone, the current hour and day on its clock, the chart's
  first minute, and whether each feed is ready;
- ``calls``: the calls in progress by call id (the customer's number masked: a wallboard
  hangs on a wall);
- ``tiles``: one per hotline, agent and the whole centre (``all:all``): the current hour's and
  day's figures (``None`` before a call of it completed) and the calls ringing and in
  conversation now;
- ``chart``: the whole centre's offered and answered calls per minute over the last hour, by
  minute start.

The hour, day and minutes come from the worker's metric settings (``CALLSTREAM_TIME_ZONE``,
``CALLSTREAM_METRICS_WINDOWS``); a window size the worker does not count is left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from callstream.processors.callmetrics.windows import MINUTE_MS, MetricSettings, window_bounds
from callstream.schemas.calls import LiveCall
from callstream.schemas.metrics import WindowMetrics

Board = dict[str, dict[str, Any]]
Patch = dict[str, dict[str, Any]]  # section -> {"set": {key: value}, "del": [key, ...]}
SECTIONS = ("meta", "calls", "tiles", "chart")
CHART_MINUTES = 60
FIGURES = (
    "offered",
    "answered",
    "abandoned",
    "answer_rate",
    "abandon_rate",
    "service_level",
    "avg_speed_of_answer_s",
    "avg_handle_time_s",
)
KEPT_DIGITS = (4, 3)  # of a customer's number: the first and the last shown


def masked(number: str | None) -> str | None:
    """A customer's number with its middle hidden (``0770•••544``); a short one whole but
    its last digits."""
    if number is None:
        return None
    head, tail = KEPT_DIGITS
    if len(number) <= head + tail:
        return "•" * max(0, len(number) - tail) + number[-tail:]
    return number[:head] + "•••" + number[-tail:]


def _call(call: LiveCall) -> dict[str, Any]:
    return {
        "phase": call.phase,
        "direction": call.direction,
        "customer": masked(call.customer_number),
        "hotline": call.hotline,
        "agent": call.agent_extension,
        "ringing_at_ms": call.ringing_at_ms,
        "answered_at_ms": call.answered_at_ms,
        "updated_at_ms": call.updated_at_ms,
    }


def _figures(window: WindowMetrics) -> dict[str, Any]:
    return {name: getattr(window, name) for name in FIGURES}


def _bounds(now_ms: int, window: str, settings: MetricSettings) -> list[int] | None:
    if window not in settings.windows:
        return None
    return list(window_bounds(now_ms, window, settings.tz))


def build_board(
    calls: Iterable[LiveCall],
    windows: Iterable[WindowMetrics],
    now_ms: int,
    settings: MetricSettings,
    *,
    live_ready: bool = True,
    metrics_ready: bool = True,
) -> Board:
    """The board at ``now_ms`` (the worker's clock) from the calls in progress and the
    windows held."""
    hour = _bounds(now_ms, "1h", settings)
    day = _bounds(now_ms, "1d", settings)
    minute = _bounds(now_ms, "1m", settings)
    chart_from = None if minute is None else minute[0] - (CHART_MINUTES - 1) * MINUTE_MS
    tiles: dict[str, dict[str, Any]] = {}

    def tile(dimension: str, value: str) -> dict[str, Any]:
        key = f"{dimension}:{value}"
        if key not in tiles:
            tiles[key] = {
                "dimension": dimension,
                "value": value,
                "label": None,
                "hour": None,
                "day": None,
                "ringing": 0,
                "talking": 0,
            }
        return tiles[key]

    chart: dict[str, Any] = {}
    tile("all", "all")
    for window in windows:
        start = window.window_start_ms
        if window.window == "1m":
            charted = chart_from is not None and 0 <= start - chart_from < CHART_MINUTES * MINUTE_MS
            if window.dimension == "all" and charted:
                chart[str(start)] = {"offered": window.offered, "answered": window.answered}
            continue
        current = {"1h": hour, "1d": day}.get(window.window)
        if current is None or start != current[0]:
            continue
        shown = tile(window.dimension, window.value)
        shown["hour" if window.window == "1h" else "day"] = _figures(window)
        shown["label"] = shown["label"] or window.label
    live: dict[str, Any] = {}
    phases: Counter[tuple[str, str, str]] = Counter()
    for call in calls:
        live[call.call_id] = _call(call)
        phase = "ringing" if call.phase == "ringing" else "talking"
        phases["all", "all", phase] += 1
        if call.hotline is not None:
            phases["hotline", call.hotline, phase] += 1
        if call.agent_extension is not None:
            phases["agent", call.agent_extension, phase] += 1
    for (dimension, value, phase), count in phases.items():
        tile(dimension, value)[phase] = count
    meta = {
        "zone": settings.zone,
        "service_level_s": settings.service_level_s,
        "hour": hour,
        "day": day,
        "chart_from_ms": chart_from,
        "chart_minutes": CHART_MINUTES,
        "live_ready": live_ready,
        "metrics_ready": metrics_ready,
    }
    return {"meta": meta, "calls": live, "tiles": tiles, "chart": chart}


def diff(old: Board, new: Board) -> Patch:
    """The keys ``new`` sets (added or changed) and deletes, per section; empty: no change."""
    patch: Patch = {}
    for section in SECTIONS:
        before, after = old.get(section, {}), new.get(section, {})
        changed = {key: value for key, value in after.items() if before.get(key) != value}
        gone = [key for key in before if key not in after]
        if changed or gone:
            patch[section] = {"set": changed, "del": gone}
    return patch


def patched(board: Board, patch: Patch) -> Board:
    """``board`` with ``patch`` applied (what the page does with a patch event)."""
    result = {section: dict(board.get(section, {})) for section in SECTIONS}
    for section, change in patch.items():
        for key in change["del"]:
            result[section].pop(key, None)
        result[section].update(change["set"])
    return result


class BoardHistory:
    """The latest board, numbered, and the patches that led to it: a client that reconnects
    with the id of the last event it applied gets the patches after it, when they are still
    kept (``keep`` of them) and it was this process that numbered them (``epoch``); else a
    snapshot."""

    def __init__(self, epoch: str, keep: int = 256) -> None:
        if "-" in epoch:
            raise ValueError("an epoch holds no '-': it separates the event id's parts")
        self.epoch = epoch
        self.keep = keep
        self.board: Board = {section: {} for section in SECTIONS}
        self.seq = 0
        self._patches: list[tuple[int, Patch]] = []

    def event_id(self, seq: int | None = None) -> str:
        return f"{self.epoch}-{self.seq if seq is None else seq}"

    def advance(self, board: Board) -> tuple[str, Patch] | None:
        """Take ``board`` as the latest: its id and its patch, or ``None`` when unchanged."""
        patch = diff(self.board, board)
        if not patch:
            return None
        self.board = board
        self.seq += 1
        self._patches.append((self.seq, patch))
        del self._patches[: -self.keep]
        return self.event_id(), patch

    def since(self, last_id: str | None) -> list[tuple[str, Patch]] | None:
        """The patches after the event ``last_id``, in order; ``None`` when they are not all
        kept or the id is not this history's (the client needs a snapshot)."""
        if last_id is None:
            return None
        epoch, _, number = last_id.partition("-")
        if epoch != self.epoch or not number.isdigit():
            return None
        seq = int(number)
        oldest = self._patches[0][0] if self._patches else self.seq + 1
        if seq > self.seq or seq < oldest - 1:
            return None
        return [(self.event_id(n), patch) for n, patch in self._patches if n > seq]
