"""The ground truth of a simulated call, one JSON line each (``simulate --out``): what the call
really was and what of it was sent, written from the simulator's own model so that the pipeline
is checked against something it did not compute (tests/integration/test_simulated_pipeline.py).
"""

from __future__ import annotations

from typing import Any

from callstream.traffic.bodies import corrected_price
from callstream.traffic.plan import CallPlan


def truth_record(plan: CallPlan) -> dict[str, Any]:
    call = plan.call
    return {
        "call_id": call.call_id,
        "direction": call.direction,
        "hotline": call.hotline,
        "agent": call.agent.extension,
        "agent_name": call.agent.name,
        "customer_number": call.peer,
        "started_at_ms": call.start_s * 1000,
        "answered": call.answered,
        "ring_seconds": call.ring_s,
        "talk_seconds": call.talk_s,
        "duration_seconds": call.duration_s,
        "ended_by": call.ended_by,
        "outcome": call.outcome,
        "billed_seconds": call.bill_s,
        "price": corrected_price(call) if plan.corrected else call.price,
        "sent": {"live": plan.live_sent, "cdr": plan.cdr_sent},
        "faults": sorted(set(plan.faults)),
    }
