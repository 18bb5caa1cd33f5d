"""The worker tests' wait predicate: a call's state equals the pure fold's truth, or it waits.

The race it closes (issue 12): the CDR and the live events travel on different topics, so the
worker may fold a call's CDR before its hangup. That state is already ``completed``, and a wait
for "every call completed" stopped on it, a few milliseconds before the hangup changed it.
"""

from __future__ import annotations

import msgspec

from callstream.processors.callstate import PublishCompleted, apply
from callstream.schemas.calls import CompletedCall
from callstream.schemas.parse import parse_webhook
from tests.callstate_truth import (
    completed_mismatches,
    describe,
    folded,
    highest_revisions,
    latest_states,
    state_mismatches,
)
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


def published_completions(bodies: list[bytes]) -> list[bytes]:
    """The calls-completed values the pure fold publishes for ``bodies`` in this order."""
    state, values = None, []
    for body in bodies:
        state, outputs = apply(state, parse_webhook(body).payload, received_at_ms=1)
        values += [msgspec.json.encode(o.value) for o in outputs if isinstance(o, PublishCompleted)]
    return values


def test_the_highest_revision_must_be_the_truths_completed_call() -> None:
    truth = {CALL: folded(call_events(CALL))}
    values = published_completions([RINGING, CDR, ANSWERED, HANGUP])
    assert len(values) == 3  # the CDR, then the answered event and the hangup each revise it
    assert completed_mismatches(truth, values) == {}
    assert highest_revisions(values) == {CALL: 4}  # four events folded
    early = completed_mismatches(truth, values[:1])  # read before the live events' revisions
    assert early[CALL].startswith("revision 2: answered_at_ms: expected 1700000004000, seen None")


def test_a_doubled_or_missing_revision_or_call_is_named() -> None:
    values = published_completions([RINGING, CDR, ANSWERED, HANGUP])
    truth = {CALL: folded(call_events(CALL)), "other": folded(call_events("other"))}
    assert completed_mismatches(truth, [*values, None]) == {"other": "no completed call"}
    # The same record again (a flush's outputs re-sent after a kill) is no double ...
    assert CALL not in completed_mismatches(truth, [*values[:2], values[1], values[2]])

    # ... a revision again with other figures is ...
    def priced(value: bytes) -> bytes:
        call = msgspec.json.decode(value, type=CompletedCall)
        return msgspec.json.encode(msgspec.structs.replace(call, price=9.0))

    assert completed_mismatches(truth, [*values, priced(values[1])])[CALL] == (
        "revisions [3] published again with other figures"
    )
    # ... but for a worker killed, only at the highest revision (a replay reading the events
    # in another order republishes lower ones).
    assert CALL not in completed_mismatches(truth, [*values, priced(values[1])], replayed=True)
    assert completed_mismatches(truth, [*values, priced(values[2])], replayed=True)[CALL] == (
        "revisions [4] published again with other figures"
    )
    # The right figures at a revision that does not count every event: a partial record could
    # outrank them.
    final = msgspec.json.decode(values[2], type=CompletedCall)
    lower = msgspec.json.encode(msgspec.structs.replace(final, revision=3))
    assert completed_mismatches(truth, [*values[:1], lower])[CALL] == (
        "revision 3, not 4 (the events folded)"
    )
