"""What the pipeline must say of simulated calls, computed from ``simulate``'s ground truth
(truth.jsonl) alone, by docs/call-state.md's and docs/metrics.md's rules: it imports nothing
from the processors, so that it checks them rather than repeating them."""

from __future__ import annotations

from typing import Any

import msgspec

from callstream.schemas.calls import CompletedCall, Outcome

# What a completed record says that the truth cannot: its history, and a URL the simulator made.
UNCHECKED = frozenset({"revision", "recording_url"})


def expected_completed(truth: dict[str, Any]) -> CompletedCall | None:
    """The completed record of a call whose webhooks reached the pipeline (None: none did)."""
    live, cdr = truth["sent"]["live"], truth["sent"]["cdr"]
    if not live and not cdr:
        return None
    answered = truth["answered"]
    outcome: Outcome
    if answered:
        outcome = "answered"
    else:
        # Without a CDR nobody says who hung up: an unanswered inbound call counts abandoned.
        by_customer = not cdr or truth["ended_by"] == "end_call_by_customer"
        outcome = "abandoned" if truth["direction"] == "inbound" and by_customer else "missed"
    start = truth["started_at_ms"]
    return CompletedCall(
        call_id=truth["call_id"],
        revision=1,
        source="both" if live and cdr else "live" if live else "cdr",
        outcome=outcome,
        direction=truth["direction"],
        customer_number=truth["customer_number"],
        hotline=truth["hotline"],
        agent_extension=truth["agent"],
        agent_name=truth["agent_name"] if cdr else None,
        started_at_ms=start,
        answered_at_ms=start + truth["ring_seconds"] * 1000 if live and answered else None,
        ended_at_ms=start + truth["duration_seconds"] * 1000,
        ring_seconds=float(truth["ring_seconds"]),
        ring_seconds_estimated=not live,
        talk_seconds=float(truth["talk_seconds"]),
        duration_seconds=float(truth["duration_seconds"]),
        price=truth["price"] if cdr else None,
        billed_seconds=float(truth["billed_seconds"]) if cdr else None,
        ended_by=truth["ended_by"] if cdr else None,
        recording_url=None,
        cdr_missing=not cdr,
        live_missing=cdr and not live,
    )


def checked(record: CompletedCall) -> dict[str, Any]:
    """A completed record's fields that the truth decides."""
    fields: dict[str, Any] = msgspec.structs.asdict(record)
    return {name: value for name, value in fields.items() if name not in UNCHECKED}


def completed_mismatches(
    expected: dict[str, CompletedCall], seen: dict[str, CompletedCall]
) -> str | None:
    """How the highest revisions ``seen`` (by call id) differ from
    ``expected``; None when every call is there and equal."""
    problems = []
    for call_id, want in expected.items():
        got = seen.get(call_id)
        if got is None:
            problems.append(f"{call_id}: missing")
            continue
        want_fields, got_fields = checked(want), checked(got)
        if want_fields != got_fields:
            diff = {
                name: (value, got_fields.get(name))
                for name, value in want_fields.items()
                if got_fields.get(name) != value
            }
            problems.append(f"{call_id}: (want, got) {diff}")
    problems += [f"{call_id}: not simulated" for call_id in seen.keys() - expected.keys()]
    if not problems:
        return None
    return f"{len(problems)} calls differ, e.g. " + "; ".join(problems[:3])
