"""Generated calls for the metrics tests, posted as the provider would, and the windows they
must give: the brute force of tests/metrics_truth.py over the pure fold's final calls."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import orjson
from aiokafka.structs import ConsumerRecord

from callstream.processors.callstate import completed_call, expire
from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.topics import CALLS_COMPLETED
from tests.callstate_truth import folded
from tests.integration.ingress_support import Ingress, sample
from tests.kafka_support import read_until
from tests.metrics_truth import expected_windows, window_mismatches

HOTLINES = ("842899959300", "19001234", "02873000111")
AGENTS = (("100", "Trần Văn Tiến"), ("101", "Nguyễn Thị Lan"), ("102", "Lê Minh"))
WINDOWS = ["1m", "15m", "1h", "1d"]
ZONE = "Asia/Ho_Chi_Minh"
SLA_S = 20.0


@dataclass
class GeneratedCall:
    """One call's webhook bodies: ``early`` posted first (in any order, with duplicates),
    ``late`` only after the timer completed the call without its CDR."""

    call_id: str
    early: list[bytes]
    late: list[bytes]
    times_out: bool  # no CDR ever: completed by the timer

    def final_state(self) -> CallState:
        state = folded([*self.early, *self.late])
        return expire(state, 10**15)[0] if self.times_out else state

    def final(self) -> CompletedCall:
        return completed_call(self.final_state())


def generate_calls(prefix: str, count: int, now_ms: int, seed: int) -> list[GeneratedCall]:
    """``count`` calls that started in the last 20 minutes, of every kind the metrics count:
    answered, abandoned, missed, from a CDR alone, corrected (a newer CDR that moves the call
    to another hotline), without a CDR, and completed by the timer then corrected by a late
    CDR."""
    rng = random.Random(seed)
    calls = []
    for index in range(count):
        call_id = f"{prefix}-{index}"
        kind = index % 7
        start_ms = now_ms - rng.randrange(60_000, 20 * 60_000)
        start_ms -= start_ms % 1000
        answered = kind not in (1, 2)
        hotline = rng.choice(HOTLINES)
        agent, name = rng.choice(AGENTS)
        shape = Shape(
            call_id,
            start_ms,
            ring_s=rng.randrange(1, 40),
            talk_s=rng.randrange(1, 300) if answered else 0,
            hotline=hotline,
            agent=agent,
            name=name,
            direction="inbound" if kind in (1, 4) else rng.choice(["inbound", "outbound", "local"]),
        )
        live, cdr = _live(shape), _cdr(shape)
        if kind == 1:  # abandoned: the customer hung up while it rang
            cdr.update(disposition="cancelled", endby_name="end_call_by_customer")
        if kind == 2:  # missed: nobody took it, the agent's side ended it
            cdr.update(disposition="cancelled", endby_name="end_call_by_agent")
        early, late, times_out = [*live, orjson.dumps(cdr)], [], False
        if kind == 3:  # from its CDR alone
            early = [orjson.dumps(cdr)]
        elif kind == 4:  # corrected: a newer CDR moves it to another hotline
            newer = {
                **cdr,
                "hotline": HOTLINES[(HOTLINES.index(hotline) + 1) % len(HOTLINES)],
                "call_out_price": 99.5,
                "last_updated_date": cdr["last_updated_date"] + 5_000,
            }
            early.append(orjson.dumps(newer))
        elif kind == 5:  # no CDR ever
            early, times_out = live, True
        elif kind == 6:  # completed by the timer, then its CDR
            early, late = live, [orjson.dumps(cdr)]
        calls.append(GeneratedCall(call_id, early, late, times_out))
    return calls


@dataclass(frozen=True)
class Shape:
    """What a generated call is, before it becomes webhook bodies."""

    call_id: str
    start_ms: int
    ring_s: int
    talk_s: int  # 0 when not answered
    hotline: str
    agent: str
    name: str
    direction: str


def _live(call: Shape) -> list[bytes]:
    base = orjson.loads(sample("event-ringing.json"))
    customer = "0395187319"
    inbound = call.direction == "inbound"
    parties = {
        "from_number": customer if inbound else call.agent,
        "to_number": call.agent if inbound else customer,
    }
    moments = [("ringing", 0)]
    if call.talk_s:
        moments.append(("answered", call.ring_s * 1000))
    moments.append(("hangup", (call.ring_s + call.talk_s) * 1000))
    return [
        orjson.dumps(
            {
                **base,
                **parties,
                "call_uuid": call.call_id,
                "state": state,
                "date_time": call.start_ms + offset,
                "created_time": call.start_ms // 1000,
                "hotline": call.hotline,
                "direction": call.direction,
            }
        )
        for state, offset in moments
    ]


def _cdr(call: Shape) -> dict[str, Any]:
    cdr: dict[str, Any] = orjson.loads(sample("cdr.json"))
    start_s, ring_s, talk_s = call.start_ms // 1000, call.ring_s, call.talk_s
    billed = 0 if talk_s == 0 else max(6, talk_s)
    cdr.update(
        transaction_id=call.call_id,
        hotline=call.hotline,
        sip_user=call.agent,
        direction=call.direction,
        create_by={**cdr["create_by"], "name": call.name},
        time_start_call=start_s,
        time_start_to_answer=start_s,
        time_end_call=start_s + ring_s + talk_s,
        duration=ring_s + talk_s,
        answer_sec=talk_s,
        record_seconds=talk_s,
        bill_sec=billed,
        call_out_price=round(billed * 9.1667, 3),
        created_date=(start_s + ring_s + talk_s) * 1000 + 500,
        last_updated_date=(start_s + ring_s + talk_s) * 1000 + 700,
    )
    return cdr


def calls_in_progress(prefix: str, count: int, now_ms: int) -> dict[str, tuple[bytes, ...]]:
    """``count`` calls still in progress (ringing, or ringing then answered; never ended): each
    call's bodies by call id."""
    found = {}
    for index in range(count):
        agent, name = AGENTS[index % len(AGENTS)]
        shape = Shape(
            f"{prefix}-open-{index}",
            now_ms - 30_000,
            ring_s=5,
            talk_s=60,
            hotline=HOTLINES[index % len(HOTLINES)],
            agent=agent,
            name=name,
            direction="inbound",
        )
        found[shape.call_id] = tuple(_live(shape)[: 1 + index % 2])
    return found


def deliveries(calls: Iterable[GeneratedCall], seed: int, *, late: bool = False) -> list[bytes]:
    """Every early (or late) body of the calls, shuffled across and within calls, a tenth of
    them twice."""
    rng = random.Random(seed)
    bodies = [body for call in calls for body in (call.late if late else call.early)]
    bodies += rng.sample(bodies, len(bodies) // 10)
    rng.shuffle(bodies)
    return bodies


def truth(calls: Iterable[GeneratedCall]) -> dict[str, dict[str, Any]]:
    return expected_windows([call.final() for call in calls], WINDOWS, ZONE, SLA_S)


def latest_windows(
    records: list[ConsumerRecord], held: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Each key's record of the highest revision on ``callstream.metrics``, the later of two
    with one revision (a window re-sent after a worker kill: docs/metrics.md); folded into
    ``held`` when given (records read earlier), and that returned."""
    latest: dict[str, dict[str, Any]] = {} if held is None else held
    for record in records:
        value = msgspec.json.decode(record.value)
        key = record.key.decode()
        if key not in latest or value["revision"] >= latest[key]["revision"]:
            latest[key] = value
    return latest


async def wait_for_windows(
    ingress: Ingress, bootstrap: str, expected: dict[str, dict[str, Any]], deadline_s: float = 90
) -> dict[str, dict[str, Any]]:
    """``callstream.metrics``' latest windows once they equal ``expected`` (read on for 2 s to
    catch a later change); raises at the deadline."""
    records = await read_until(
        bootstrap,
        ingress.topics["callstream.metrics"],
        lambda records: window_mismatches(expected, latest_windows(records)),
        deadline_s=deadline_s,
        settle_s=2,
    )
    latest = latest_windows(records)
    assert window_mismatches(expected, latest) is None
    return latest


async def wait_timed_out(
    ingress: Ingress, bootstrap: str, calls: list[GeneratedCall], deadline_s: float = 60
) -> None:
    """Until every call with a late CDR is on calls-completed, completed without a CDR."""
    waiting = {call.call_id for call in calls if call.late}

    def missing(records: list[ConsumerRecord]) -> str | None:
        done = {
            completed.call_id
            for completed in (
                msgspec.json.decode(record.value, type=CompletedCall) for record in records
            )
            if completed.cdr_missing
        }
        left = waiting - done
        return f"not timed out yet: {sorted(left)[:5]}" if left else None

    await read_until(bootstrap, ingress.topics[CALLS_COMPLETED], missing, deadline_s=deadline_s)


async def api_windows(
    worker_url: str, expected: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """What the worker's query API answers, for every dimension and window size ``expected``
    names, over the range its windows span: its windows by topic key."""
    starts = [int(key.rsplit(":", 1)[1]) for key in expected]
    window_range = {"from": str(min(starts)), "to": str(max(starts) + 1)}
    found: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as session:
        for dimension in ("all", "hotline", "agent", "direction"):
            for window in WINDOWS:
                params = {"window": window, **window_range}
                async with session.get(f"{worker_url}/metrics/{dimension}", params=params) as got:
                    assert got.status == 200, await got.text()
                    for record in await got.json():
                        key = f"{dimension}:{record['value']}:{window}:{record['window_start_ms']}"
                        found[key] = record
    return found
