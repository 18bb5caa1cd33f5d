"""The worker tests' wait predicate: a call's state equals the pure fold's truth, or it waits.

The race it closes (issue 12): the CDR and the live events travel on different topics, so the
worker may fold a call's CDR before its hangup. That state is already ``completed``, and a wait
for "every call completed" stopped on it, a few milliseconds before the hangup changed it.
"""

from __future__ import annotations

import msgspec

from callstream.processors.callstate import apply
from callstream.schemas.parse import parse_webhook
from tests.callstate_truth import describe, folded, latest_states, state_mismatches
from tests.integration.worker_support import call_events

CALL = "truth-call"
RINGING, ANSWERED, HANGUP, CDR = call_events(CALL)


def test_a_cdr_folded_before_the_hangup_is_completed_but_not_the_truth() -> None:
    early = folded([RINGING, ANSWERED, CDR])
    assert early.status == "completed"  # where "every call completed" stopped waiting
    differences = state_mismatches({CALL: folded(call_events(CALL))}, {CALL: early})
    assert list(differences) == [CALL]
    assert "hangup_at_ms: expected 1700000010000, seen None" in differences[CALL]


def test_the_truth_in_another_order_at_other_times_matches() -> None:
    state = None
    for at, body in enumerate([CDR, HANGUP, RINGING, CDR, ANSWERED]):
        state, _ = apply(state, parse_webhook(body).payload, received_at_ms=1_000 + at)
    assert state is not None
    assert state_mismatches({CALL: folded(call_events(CALL))}, {CALL: state}) == {}


def test_a_state_with_more_events_than_expected_does_not_match() -> None:
    answered = folded([RINGING, ANSWERED])
    differences = state_mismatches({CALL: answered}, {CALL: folded(call_events(CALL))})
    assert "status: expected 'answered', seen 'completed'" in differences[CALL]


def test_a_missing_call_is_named_and_the_message_counts_the_rest() -> None:
    expected = {f"call-{i}": folded(call_events(f"call-{i}")) for i in range(7)}
    message = describe(state_mismatches(expected, {}))
    assert message is not None
    assert message.startswith("7 calls not in the expected state:\ncall-0: no state\n")
    assert message.endswith("... and 2 more calls")
    assert describe({}) is None


def test_latest_states_keeps_each_calls_last_value() -> None:
    ringing, done = folded([RINGING]), folded(call_events(CALL))
    values = [msgspec.json.encode(ringing), None, msgspec.json.encode(done)]
    assert latest_states(values) == {CALL: done}
