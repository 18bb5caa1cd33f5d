"""What README's three analysts' queries (SQL for analysts) must answer for simulated traffic,
computed from ``simulate``'s ground truth (truth.jsonl) alone: no SQL, no processor code."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

CENTRE = ZoneInfo("Asia/Ho_Chi_Minh")  # the queries' zone and the worker's default

Truth = list[dict[str, Any]]


def reached(truth: Truth) -> Truth:
    """The calls some webhook of which reached the pipeline (a call never misses both)."""
    return [line for line in truth if line["sent"]["live"] or line["sent"]["cdr"]]


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, CENTRE)


def answer_rate_per_hotline_per_day(truth: Truth) -> dict[tuple[str, date], tuple[int, int]]:
    """``(hotline, local day): (offered, answered)`` of the inbound calls."""
    counts: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for line in reached(truth):
        if line["direction"] == "inbound":
            pair = counts[line["hotline"], _local(line["started_at_ms"]).date()]
            pair[0] += 1
            pair[1] += line["answered"]
    return {key: (offered, answered) for key, (offered, answered) in counts.items()}


def handle_time_per_agent(truth: Truth) -> dict[str, tuple[str, int, float, float, float]]:
    """``agent: (name, answered, mean talk s, median talk s, talk hours)`` over the answered
    calls."""
    talks: dict[str, list[int]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in reached(truth):
        if line["answered"]:
            talks[line["agent"]].append(line["talk_seconds"])
            names[line["agent"]] = line["agent_name"]
    return {
        agent: (
            names[agent],
            len(seconds),
            sum(seconds) / len(seconds),
            float(statistics.median(seconds)),
            sum(seconds) / 3600,
        )
        for agent, seconds in talks.items()
    }


def busiest_hours(truth: Truth, top: int = 5) -> list[tuple[int, int, int, int]]:
    """``(local hour of day, days with calls in it, offered, answered)`` of every call, the
    ``top`` hours by offered (ties: the earlier hour)."""
    days: dict[int, set[date]] = defaultdict(set)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for line in reached(truth):
        moment = _local(line["started_at_ms"])
        days[moment.hour].add(moment.date())
        counts[moment.hour][0] += 1
        counts[moment.hour][1] += line["answered"]
    rows = [
        (hour, len(days[hour]), offered, answered) for hour, (offered, answered) in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row[2], row[0]))[:top]
