"""Synthetic calls for bench/processors.py, placed around the run's own wall clock, and the
metric windows they should end in.

The calls start in the last ``span_s`` before ``now_ms`` (ending ``END_BEFORE_NOW_S`` before it,
so that no event lies in the future), on several hotlines and agents, in every direction, some
answered and some not, so that the worker keeps and publishes realistic windows: each of them
is still inside its grace (1 h after a minute window's end by default) while the bench runs.
A call's live events and CDR agree (whole seconds), so whatever order the worker reads its two
input topics in, every call counts once in each of its windows and no correction follows.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson

from callstream.processors.callmetrics.windows import MetricSettings, window_bounds
from callstream.schemas.topics import CALL_EVENTS, CDRS

SAMPLES = Path(__file__).resolve().parents[1] / "schemas" / "samples"
HOTLINES = ("842899959300", "842899959301", "842899959302", "842471001234")
AGENTS = tuple(str(100 + n) for n in range(24))
DIRECTIONS = (("inbound", 0.6), ("outbound", 0.35), ("local", 0.05))
ANSWERED_SHARE = 0.75
SPAN_S = 45 * 60  # the calls start over the last 45 minutes
END_BEFORE_NOW_S = 6 * 60  # ... up to 6 minutes ago: no call lasts longer

Record = tuple[str, bytes, bytes]  # (logical topic, key, value)


@dataclass(frozen=True)
class Call:
    """One synthetic call: whole seconds throughout, so the CDR and the live events agree."""

    call_id: str
    start_s: int
    ring_s: int
    talk_s: int  # 0: not answered
    direction: str
    hotline: str
    agent: str
    by_customer: bool

    @property
    def answered(self) -> bool:
        return self.talk_s > 0

    def dimensions(self) -> list[tuple[str, str]]:
        return [
            ("all", "all"),
            ("hotline", self.hotline),
            ("agent", self.agent),
            ("direction", self.direction),
        ]


def synthetic_calls(
    count: int, now_ms: int, seed: int = 13, span_s: int = SPAN_S, prefix: str = "bench"
) -> list[Call]:
    """``count`` calls starting in order over ``span_s`` seconds ending
    ``END_BEFORE_NOW_S`` before ``now_ms``."""
    rng = random.Random(seed)
    last = now_ms // 1000 - END_BEFORE_NOW_S
    first = last - span_s
    directions = [name for name, _ in DIRECTIONS]
    weights = [weight for _, weight in DIRECTIONS]
    calls = []
    for i in range(count):
        answered = rng.random() < ANSWERED_SHARE
        calls.append(
            Call(
                call_id=f"{prefix}-{i:07d}",
                start_s=first + (i * span_s) // max(count, 1),
                ring_s=rng.randint(2, 40),
                talk_s=rng.randint(5, 300) if answered else 0,
                direction=rng.choices(directions, weights)[0],
                hotline=rng.choice(HOTLINES),
                agent=rng.choice(AGENTS),
                by_customer=rng.random() < 0.7,
            )
        )
    return calls


def _samples() -> tuple[dict[str, object], dict[str, object]]:
    live = orjson.loads((SAMPLES / "event-ringing.json").read_bytes())
    cdr = orjson.loads((SAMPLES / "cdr.json").read_bytes())
    return live, cdr


def call_records(calls: list[Call], shape: str = "full") -> list[Record]:
    """Each call's ringing, answered (when answered), hangup and CDR in delivery order, or
    (``shape="cdr"``) its CDR only."""
    live, cdr = _samples()
    records: list[Record] = []
    for call in calls:
        key = call.call_id.encode()
        start_ms = call.start_s * 1000
        duration = call.ring_s + call.talk_s
        inbound = call.direction == "inbound"
        parties = {
            "from_number": "0395187319" if inbound else call.agent,
            "to_number": call.agent if inbound else "0395187319",
            "hotline": call.hotline,
            "direction": call.direction,
        }
        if shape == "full":
            timeline = [("ringing", 0)]
            if call.answered:
                timeline.append(("answered", call.ring_s))
            timeline.append(("hangup", duration))
            for state, offset_s in timeline:
                at_ms = start_ms + offset_s * 1000
                body = {
                    **live,
                    **parties,
                    "call_uuid": call.call_id,
                    "state": state,
                    "date_time": at_ms,
                    "created_time": at_ms // 1000,
                }
                records.append((CALL_EVENTS, key, orjson.dumps(body)))
        end_s = call.start_s + duration
        billed = max(6, call.talk_s) if call.answered else 0
        body = {
            **cdr,
            **parties,
            "transaction_id": call.call_id,
            "sip_user": call.agent,
            "sip_number": call.hotline,
            "source_number": call.hotline,
            "create_by": {**cdr["create_by"], "name": f"Agent {call.agent}"},  # type: ignore[dict-item]
            "answer_sec": call.talk_s,
            "record_seconds": call.talk_s,
            "bill_sec": billed,
            "call_out_price": round(billed * 9.1667, 3) if call.direction == "outbound" else 0,
            "duration": duration,
            "endby_name": "end_call_by_customer" if call.by_customer else "end_call_by_agent",
            "time_start_call": call.start_s,
            "time_start_to_answer": call.start_s + call.ring_s,
            "time_end_call": end_s,
            "created_date": end_s * 1000 + 150,
            "last_updated_date": end_s * 1000 + 300,
        }
        records.append((CDRS, key, orjson.dumps(body)))
    return records


def expected_offered(calls: list[Call], settings: MetricSettings) -> dict[str, int]:
    """How many calls each window should count once all are folded, by its key on
    ``callstream.metrics`` (``<dimension>:<value>:<window>:<start ms>``)."""
    offered: Counter[str] = Counter()
    for call in calls:
        starts = [
            (window, window_bounds(call.start_s * 1000, window, settings.tz)[0])
            for window in settings.windows
        ]
        for dimension, value in call.dimensions():
            for window, start in starts:
                offered[f"{dimension}:{value}:{window}:{start}"] += 1
    return dict(offered)
