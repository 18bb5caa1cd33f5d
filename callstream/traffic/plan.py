"""When each simulated call's webhooks are sent, with the provider's delivery faults, and all
calls' deliveries merged into one time-ordered stream that never holds more than the calls in
progress.

Faults (docs/traffic.md): duplicates (a re-send; a CDR's with ``send_num_retry`` + 1),
reordering (a CDR before its hangup, or ``answered`` before ``ringing``), a missing CDR, missing
live events, and a corrected CDR re-issued later with a newer ``last_updated_date``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from callstream.traffic import bodies
from callstream.traffic.calls import CallCentre, SimulatedCall
from callstream.traffic.delivery import Delivery


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Each a probability per call (``duplicate``: per webhook); modest, non-zero defaults.
    ``disposition`` is no fault: the share of CDRs carrying the call-history API's field."""

    duplicate: float = 0.02
    reorder: float = 0.03
    missing_cdr: float = 0.01
    missing_live: float = 0.01
    corrected_cdr: float = 0.02
    disposition: float = 0.5

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability from 0 to 1, not {value}")


@dataclass(frozen=True, slots=True)
class CallPlan:
    """One call and what is sent of it: ``live_sent``/``cdr_sent`` say whether any live event
    and a CDR reach the ingress at all; ``corrected``: a re-issued CDR follows the first."""

    call: SimulatedCall
    starts_at_s: float  # the call's start, on the deliveries' clock: none is earlier
    deliveries: tuple[Delivery, ...]
    live_sent: bool
    cdr_sent: bool
    corrected: bool
    faults: tuple[str, ...]


def plan_call(
    call: SimulatedCall,
    centre: CallCentre,
    rng: random.Random,
    rates: FaultRates,
    origin_s: float,
) -> CallPlan:
    """The deliveries of ``call``, ``at_s`` counted from ``origin_s`` (epoch seconds)."""
    faults: list[str] = []
    missing_cdr = rng.random() < rates.missing_cdr
    missing_live = not missing_cdr and rng.random() < rates.missing_live
    end_s = call.start_s + call.duration_s
    cdr_at = end_s + min(30.0, rng.lognormvariate(0.9, 0.5))  # the CDR follows in seconds
    timed: list[tuple[float, bytes]] = []
    if not missing_live:
        states = bodies.live_states(call)
        at = {"ringing": float(call.start_s), "answered": float(call.start_s + call.ring_s)}
        at["hangup"] = float(end_s)
        # Reordered as a provider does: a body held up, never one sent before what it tells
        # happened (the ringing after the answer; the hangup after the CDR made after it).
        if rng.random() < rates.reorder:
            if call.answered and (missing_cdr or rng.random() < 0.5):
                at["ringing"] = at["answered"] + 0.5
                faults.append("answered_before_ringing")
            elif not missing_cdr:
                at["hangup"] = cdr_at + 0.5
                faults.append("cdr_before_hangup")
        timed += [(at[state], bodies.live_event(call, state)) for state in states]
    disposition = rng.random() < rates.disposition
    corrected = False
    if not missing_cdr:
        timed.append((cdr_at, bodies.cdr(call, centre, created_s=cdr_at, disposition=disposition)))
        if rng.random() < rates.corrected_cdr:
            corrected = True
            again = cdr_at + rng.uniform(30, 300)
            body = bodies.cdr(
                call, centre, created_s=cdr_at, corrected_s=again, disposition=disposition
            )
            timed.append((again, body))
            faults.append("corrected_cdr")
    for at_s, body in list(timed):
        if rng.random() < rates.duplicate:
            timed.append((at_s + rng.uniform(1, 60), _resent(body)))
            faults.append("duplicate")
    faults += ["missing_cdr"] * missing_cdr + ["missing_live"] * missing_live
    deliveries = tuple(
        Delivery(at_s - origin_s, body, call.call_id) for at_s, body in sorted(timed)
    )
    start = call.start_s - origin_s
    return CallPlan(
        call, start, deliveries, not missing_live, not missing_cdr, corrected, tuple(faults)
    )


def _resent(body: bytes) -> bytes:
    """A re-send as the provider makes it: a CDR's ``send_num_retry`` counts it; a live event
    carries no such field and comes again as it was."""
    marker = b'"send_num_retry":'
    head, found, tail = body.partition(marker)
    if not found:
        return body
    digits = len(tail) - len(tail.lstrip(b"0123456789"))
    return head + marker + str(int(tail[:digits]) + 1).encode() + tail[digits:]


def merged(plans: Iterable[CallPlan]) -> Iterator[Delivery]:
    """Every plan's deliveries in time order. ``plans`` come in their calls' start order and no
    call sends before it starts, so a delivery is due once the next call starts later than it:
    only the calls in progress are held."""
    pending: list[tuple[float, int, Delivery]] = []
    sequence = 0
    for plan in plans:
        while pending and pending[0][0] <= plan.starts_at_s:
            yield heapq.heappop(pending)[2]
        for delivery in plan.deliveries:
            heapq.heappush(pending, (delivery.at_s, sequence, delivery))
            sequence += 1
    while pending:
        yield heapq.heappop(pending)[2]
