"""The metrics of a set of completed calls, computed in one batch from scratch: the ground
truth the worker's incremental, partitioned fold is checked against. Written apart from
callstream.processors.callmetrics on purpose: it imports nothing from it."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callstream.schemas.calls import CompletedCall

_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60}


def window_start(at_ms: int, window: str, zone: str) -> int:
    """The first instant of the run of instants around ``at_ms`` whose wall clock in ``zone``
    reads the same window, found by walking back minute by minute (clocks change on whole
    minutes). Kept by the reading and the offset: one walk serves all of a window's calls."""
    minute = at_ms - at_ms % 60_000
    key = (_reading(minute, window, zone), str(_local(minute, zone).utcoffset()), window, zone)
    if key not in _STARTS:
        while _reading(minute - 60_000, window, zone) == key[0]:
            minute -= 60_000
        _STARTS[key] = minute
    return _STARTS[key]


_STARTS: dict[tuple[tuple[int, ...], str, str, str], int] = {}


def _local(at_ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(at_ms // 1000, UTC).astimezone(ZoneInfo(zone))


def _reading(at_ms: int, window: str, zone: str) -> tuple[int, ...]:
    """The window the wall clock reads at ``at_ms``: its date, and hour and minute within it."""
    local = _local(at_ms, zone)
    if window == "1d":
        return (local.year, local.month, local.day)
    minute_of_day = local.hour * 60 + local.minute
    return (local.year, local.month, local.day, minute_of_day - minute_of_day % _MINUTES[window])


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def expected_windows(
    calls: list[CompletedCall], windows: list[str], zone: str, sla_s: float
) -> dict[str, dict[str, Any]]:
    """``{topic key: figures}`` of every window the calls fall in."""
    members: dict[str, list[CompletedCall]] = defaultdict(list)
    for call in calls:
        if call.started_at_ms is None:
            continue
        keys = [("all", "all")]
        if call.hotline:
            keys.append(("hotline", call.hotline))
        if call.agent_extension:
            keys.append(("agent", call.agent_extension))
        if call.direction:
            keys.append(("direction", call.direction))
        for dimension, value in keys:
            for window in windows:
                start = window_start(call.started_at_ms, window, zone)
                members[f"{dimension}:{value}:{window}:{start}"].append(call)
    return {key: _figures(key, group, sla_s) for key, group in members.items()}


def _figures(key: str, calls: list[CompletedCall], sla_s: float) -> dict[str, Any]:
    answered = [call for call in calls if call.outcome == "answered"]
    rings = [ms for ms in (_ms(call.ring_seconds) for call in answered) if ms is not None]
    talks = [ms for ms in (_ms(call.talk_seconds) for call in answered) if ms is not None]
    within = [ring for ring in rings if ring <= sla_s * 1000]
    abandoned = sum(call.outcome == "abandoned" for call in calls)
    names: dict[str, int] = defaultdict(int)
    if key.startswith("agent:"):
        for call in calls:
            if call.agent_name:
                names[call.agent_name] += 1
    offered = len(calls)
    return {
        "label": sorted(names, key=lambda name: (-names[name], name))[0] if names else None,
        "offered": offered,
        "answered": len(answered),
        "missed": sum(call.outcome == "missed" for call in calls),
        "abandoned": abandoned,
        "answered_within_sla": len(within),
        "answer_rate": len(answered) / offered,
        "abandon_rate": abandoned / offered,
        "service_level": len(within) / offered,
        "avg_speed_of_answer_s": sum(rings) / len(rings) / 1000 if rings else None,
        "max_speed_of_answer_s": max(rings) / 1000 if rings else None,
        "avg_handle_time_s": sum(talks) / len(talks) / 1000 if talks else None,
        "talk_seconds": sum(talks) / 1000,
        "billed_seconds": sum(_ms(call.billed_seconds) or 0 for call in calls) / 1000,
        "total_price": sum(round((call.price or 0) * 1_000_000) for call in calls) / 1_000_000,
        "cdr_missing": sum(call.cdr_missing for call in calls),
        "live_missing": sum(call.live_missing for call in calls),
    }


# What a window's record says beyond its figures: its name, and its history (revision, clock).
NOT_FIGURES = frozenset(
    {
        "revision",
        "updated_at_ms",
        "dimension",
        "value",
        "window",
        "zone",
        "window_start_ms",
        "window_end_ms",
        "service_level_threshold_s",
    }
)


def figures_of(record: dict[str, Any]) -> dict[str, Any]:
    """A ``callstream.metrics`` value (as JSON builtins) without what is not its figures."""
    return {name: value for name, value in record.items() if name not in NOT_FIGURES}


def window_mismatches(
    expected: dict[str, dict[str, Any]], seen: dict[str, dict[str, Any]]
) -> str | None:
    """How the windows ``seen`` (topic key: record) differ from ``expected`` (topic key:
    figures), or None when they agree: every expected window with its figures, and any other
    window emptied (every call it counted moved elsewhere)."""
    problems = []
    for key, want in sorted(expected.items()):
        got = seen.get(key)
        if got is None:
            problems.append(f"{key}: missing")
        elif figures_of(got) != want:
            diff = {
                name: (value, figures_of(got).get(name))
                for name, value in want.items()
                if figures_of(got).get(name) != value
            }
            problems.append(f"{key}: (want, got) {diff}")
    for key in sorted(seen.keys() - expected.keys()):
        if seen[key]["offered"]:
            problems.append(f"{key}: not expected, offered {seen[key]['offered']}")
    if not problems:
        return None
    return f"{len(problems)} windows differ, e.g. " + "; ".join(problems[:4])
