"""The call-state fold, list in / list out, on the provider's samples (docs/call-state.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec
import orjson
import pytest
from jsonschema import Draft202012Validator

from callstream.processors.callstate import (
    DEFAULT_SETTINGS,
    EndLive,
    Event,
    FoldSettings,
    Output,
    PublishCompleted,
    PublishLive,
    PublishState,
    apply,
    completed_call,
    evictable,
    expire,
    fingerprint,
    live_call,
    next_deadline_ms,
    without_history,
)
from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import parse_webhook
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED, LIVE_CALLS, topic
from tests.unit.schema_fixtures import ROOT, cdr, event

CALL = "fee91d6c-90b0-4826-97d7-9ca74c58a4e7"  # the ringing sample's call_uuid
# The CDR sample's call started at 1697595783 s and ended at 1697595795 s (duration 12, bill 6).
RINGING_AT = 1_697_595_783_000
ANSWERED_AT = RINGING_AT + 5_500
HANGUP_AT = 1_697_595_795_000
T0 = 1_700_000_000_000  # our clock when the first event arrives
MIN = 60_000
HOUR = 60 * MIN


def live(state: str, date_time: int, **changes: Any) -> LiveCallEvent:
    """The ringing sample with another state and time, through the real parser."""
    payload = parse_webhook(
        orjson.dumps(event() | {"state": state, "date_time": date_time} | changes)
    ).payload
    assert isinstance(payload, LiveCallEvent)
    return payload


def record(**changes: Any) -> CallDetailRecord:
    """The CDR sample, for the same call as the live events, through the real parser.

    A change to ``...`` removes the field.
    """
    body = {k: v for k, v in (cdr() | {"transaction_id": CALL} | changes).items() if v is not ...}
    payload = parse_webhook(orjson.dumps(body)).payload
    assert isinstance(payload, CallDetailRecord)
    return payload


RINGING = live("ringing", RINGING_AT)
ANSWERED = live("answered", ANSWERED_AT)
HANGUP = live("hangup", HANGUP_AT)
CDR = record()
SEED: tuple[Event, ...] = (RINGING, ANSWERED, HANGUP, CDR)


def fold(
    events: Iterable[Event], state: CallState | None = None, start_ms: int = T0
) -> tuple[CallState, list[Output]]:
    """Apply ``events`` in order, received one millisecond apart; all outputs in order."""
    outputs: list[Output] = []
    for i, item in enumerate(events):
        state, out = apply(state, item, start_ms + i)
        outputs += out
    assert state is not None
    return state, outputs


def kinds(outputs: list[Output]) -> list[str]:
    return [type(out).__name__ for out in outputs]


def completions(outputs: list[Output]) -> list[CompletedCall]:
    return [out.call for out in outputs if isinstance(out, PublishCompleted)]


# --- the samples in order ---------------------------------------------------------------------


def test_in_order_each_step_publishes_what_changed() -> None:
    state, out = apply(None, RINGING, T0)
    assert kinds(out) == ["PublishState", "PublishLive"]
    assert state.status == "ringing"
    assert out[1] == PublishLive(live_call(state))  # type: ignore[arg-type]
    ringing = out[1].value
    assert ringing is not None
    assert (ringing.phase, ringing.customer_number, ringing.agent_extension) == (
        "ringing",
        "0395187319",
        "100",
    )

    state, out = apply(state, ANSWERED, T0 + 1)
    assert kinds(out) == ["PublishState", "PublishLive"]
    assert state.status == "answered"
    assert state.outcome is None  # only an ended call has one

    state, out = apply(state, HANGUP, T0 + 2)
    assert kinds(out) == ["PublishState", "EndLive"]
    assert (state.status, state.outcome, state.talk_sec) == ("ended", "answered", 6.5)

    state, out = apply(state, CDR, T0 + 3)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    assert out[0] == PublishState(state)
    done = completions(out)[0]
    assert done == completed_call(state)
    assert done == CompletedCall(
        call_id=CALL,
        revision=4,  # four distinct events folded (content_revision)
        source="both",
        outcome="answered",
        direction="outbound",
        customer_number="0395187319",
        hotline="842899959300",  # the CDR's, before the live event's
        agent_extension="100",
        agent_name="Trần Văn Tiến 1234",
        started_at_ms=RINGING_AT,
        answered_at_ms=ANSWERED_AT,
        ended_at_ms=HANGUP_AT,
        ring_seconds=5.5,  # the live timeline beats the CDR's estimate (12 - 5)
        talk_seconds=5.0,  # the CDR's answer_sec beats hangup - answered (6.5) and bill_sec (6)
        duration_seconds=12.0,
        price=55.002,
        billed_seconds=6.0,
        ended_by="end_call_by_customer",
        recording_url=CDR.recording_file_url,
    )
    assert state.cdr == CDR
    assert state.first_event == RINGING
    assert (state.bill_sec, state.cost, state.revision) == (6.0, 55.002, 4)
    assert state.events_seen == sorted(fingerprint(item) for item in SEED)
    assert state.updated_at_ms == T0 + 3


def test_outputs_name_their_topic_key_and_value() -> None:
    state, out = fold(SEED)
    assert {type(o).__name__: o.topic for o in out} == {
        "PublishState": CALL_STATE,
        "PublishLive": LIVE_CALLS,
        "EndLive": LIVE_CALLS,
        "PublishCompleted": CALLS_COMPLETED,
    }
    assert all(o.key == CALL for o in out)
    assert [o.value for o in out if isinstance(o, EndLive)] == [None]
    assert out[-2].value == state


def test_the_state_survives_a_json_round_trip() -> None:
    state, _ = fold(SEED)
    assert msgspec.json.decode(msgspec.json.encode(state), type=CallState) == state
    expired, _ = expire(fold(SEED[:3])[0], T0 + HOUR)
    assert msgspec.json.decode(msgspec.json.encode(expired), type=CallState) == expired


# --- duplicates and order ---------------------------------------------------------------------


@pytest.mark.parametrize("item", SEED, ids=lambda e: fingerprint(e).split(":")[0])
def test_an_event_applied_twice_changes_nothing_the_second_time(item: Event) -> None:
    for prefix in (SEED, (item,)):
        state, _ = fold(prefix)
        again, out = apply(state, item, T0 + 100)
        assert again is state
        assert out == []


def test_a_resent_cdr_changes_nothing() -> None:
    state, _ = fold(SEED)
    again, out = apply(state, record(send_num_retry=3), T0 + 10)
    assert (again, out) == (state, [])


def test_the_first_sent_cdr_is_kept_whatever_the_order_of_resends() -> None:
    resent = record(send_num_retry=2)
    one, _ = fold([*SEED, resent])
    two, _ = fold([resent, *SEED])
    assert without_history(one) == without_history(two)
    assert one.cdr == CDR


def test_cdr_first_completes_and_each_late_live_event_revises_it() -> None:
    state, out = apply(None, CDR, T0)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    assert (state.status, state.live_missing, state.ring_sec, state.ring_sec_estimated) == (
        "completed",
        True,
        7.0,  # duration 12 - answer_sec 5
        True,
    )
    first = completions(out)[0]
    assert (first.revision, first.source, first.live_missing) == (1, "cdr", True)
    assert first.started_at_ms == 1_697_595_783_000
    assert first.ended_at_ms == 1_697_595_795_000

    # Live events after the CDR never re-open the call (no live-calls upsert); each publishes it
    # again, at the revision that counts its events.
    state, out = apply(state, RINGING, T0 + 1)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    assert (state.revision, state.live_missing, completions(out)[0].source) == (2, False, "both")
    state, previous = apply(state, ANSWERED, T0 + 2)
    assert kinds(previous) == ["PublishState", "PublishCompleted"]
    assert (state.ring_sec, state.ring_sec_estimated, state.revision) == (5.5, False, 3)
    assert completions(previous)[0] == completed_call(state)
    # The hangup's time is the CDR's time_end_call, and talk is answer_sec: the same record, yet
    # folded from one more event, so at its revision 4, that of the in-order call, above the
    # three a killed run could have published before a replay in the order of time.
    state, out = apply(state, HANGUP, T0 + 3)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    assert completions(out)[0] == msgspec.structs.replace(completions(previous)[0], revision=4)
    in_order, _ = fold(SEED)
    assert without_history(state) == without_history(in_order)
    assert completed_call(state) == completed_call(in_order)


def test_a_hangup_after_the_cdr_that_moves_the_end_revises_the_call() -> None:
    state, _ = fold([RINGING, ANSWERED, CDR])
    assert completed_call(state).ended_at_ms == HANGUP_AT  # the CDR's time_end_call
    state, out = apply(state, live("hangup", HANGUP_AT + 1_000), T0 + 10)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    # Three events, then a fourth: the revision counts what the record folds.
    assert (completions(out)[0].revision, completions(out)[0].ended_at_ms) == (4, HANGUP_AT + 1_000)


def test_cdr_without_live_events_completes_with_live_missing() -> None:
    state, out = apply(None, CDR, T0)
    assert state.live_missing
    assert not state.cdr_missing
    assert (state.direction, state.customer_number, state.agent, state.outcome) == (
        "outbound",
        "0395187319",
        "100",
        "answered",
    )
    assert completions(out)[0].live_missing


def test_hangup_before_answered_still_records_both_times() -> None:
    state, out = fold([RINGING, HANGUP, ANSWERED])
    assert (state.status, state.answered_at_ms, state.hangup_at_ms) == (
        "ended",
        ANSWERED_AT,
        HANGUP_AT,
    )
    assert (state.outcome, state.ring_sec, state.talk_sec) == ("answered", 5.5, 6.5)
    assert kinds(out) == ["PublishState", "PublishLive", "PublishState", "EndLive", "PublishState"]


def test_a_late_live_event_never_reopens_an_ended_call() -> None:
    state, out = fold([HANGUP, RINGING, ANSWERED])
    assert state.status == "ended"
    assert not any(isinstance(o, PublishLive | EndLive) for o in out)


def test_an_answered_event_alone_is_a_live_call() -> None:
    state, out = apply(None, ANSWERED, T0)
    assert state.status == "answered"
    assert state.ring_sec is None
    assert kinds(out) == ["PublishState", "PublishLive"]


def test_two_answered_events_keep_the_earliest_and_two_hangups_the_latest() -> None:
    events = [RINGING, live("answered", ANSWERED_AT + 900), ANSWERED, HANGUP, live("hangup", 1)]
    one, _ = fold(events)
    two, _ = fold(reversed(events))
    assert without_history(one) == without_history(two)
    assert (one.answered_at_ms, one.hangup_at_ms) == (ANSWERED_AT, HANGUP_AT)


def test_conflicting_numbers_at_the_same_time_are_settled_by_content() -> None:
    a = live("ringing", RINGING_AT, to_number="0900000001")
    b = live("ringing", RINGING_AT, to_number="0900000002")
    one, _ = fold([a, b])
    two, _ = fold([b, a])
    assert one == msgspec.structs.replace(two, updated_at_ms=one.updated_at_ms)
    assert one.customer_number == "0900000001"


def test_a_newer_cdr_corrects_the_completed_call() -> None:
    state, _ = fold(SEED)
    newer = record(
        last_updated_date=CDR.last_updated_date + 1, answer_sec=7, bill_sec=8, call_out_price=60.0
    )
    state, out = apply(state, newer, T0 + 10)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    done = completions(out)[0]
    assert (done.revision, done.talk_seconds, done.price) == (5, 7.0, 60.0)
    older_after, _ = fold([newer, *SEED])
    assert without_history(older_after) == without_history(state)


def test_an_event_of_another_call_is_refused() -> None:
    state, _ = apply(None, RINGING, T0)
    with pytest.raises(ValueError, match="applied to call"):
        apply(state, record(transaction_id="other"), T0 + 1)


# --- outcomes ---------------------------------------------------------------------------------


def inbound(state: str, date_time: int) -> LiveCallEvent:
    return live(state, date_time, direction="inbound", from_number="0395187319", to_number="100")


def unanswered_cdr(**changes: Any) -> CallDetailRecord:
    return record(
        **({"direction": "inbound", "bill_sec": 0, "answer_sec": 0, "duration": 9} | changes)
    )


@pytest.mark.parametrize(
    ("direction", "endby", "outcome"),
    [
        ("inbound", "end_call_by_customer", "abandoned"),
        ("inbound", ..., "abandoned"),  # the CDR does not say who ended it
        ("inbound", "end_call_by_agent", "missed"),
        ("outbound", "end_call_by_customer", "missed"),
        ("local", "end_call_by_customer", "missed"),
    ],
)
def test_a_call_never_answered_is_abandoned_or_missed(
    direction: str, endby: Any, outcome: str
) -> None:
    cdr_ = unanswered_cdr(direction=direction, endby_name=endby)
    calls = [
        live("ringing", RINGING_AT, direction=direction),
        live("hangup", RINGING_AT + 9_000, direction=direction),
        cdr_,
    ]
    state, out = fold(calls)
    assert (state.outcome, state.talk_sec, state.ring_sec, state.ring_sec_estimated) == (
        outcome,
        0.0,
        9.0,  # rang until the hangup
        False,
    )
    assert completions(out)[0].outcome == outcome


def test_inbound_without_cdr_ended_unanswered_is_abandoned() -> None:
    state, _ = fold([inbound("ringing", RINGING_AT), inbound("hangup", RINGING_AT + 4_000)])
    assert (state.outcome, state.customer_number, state.agent) == ("abandoned", "0395187319", "100")
    assert (state.ring_sec, state.talk_sec) == (4.0, 0.0)


def test_a_cdr_that_talked_means_answered_even_without_the_live_event() -> None:
    state, _ = fold([RINGING, HANGUP, CDR])
    assert state.outcome == "answered"
    assert (state.ring_sec, state.ring_sec_estimated) == (7.0, True)  # duration - answer_sec
    assert state.talk_sec == 5.0


def test_a_timeline_running_backwards_falls_back_to_the_cdr() -> None:
    state, _ = fold([live("ringing", ANSWERED_AT + 1), ANSWERED, CDR])
    assert (state.ring_sec, state.ring_sec_estimated) == (7.0, True)
    without_cdr, _ = fold([live("ringing", ANSWERED_AT + 1), ANSWERED, HANGUP])
    assert without_cdr.ring_sec is None


# --- timers -----------------------------------------------------------------------------------


def test_missing_cdr_completes_after_cdr_timeout_and_a_late_cdr_corrects_it() -> None:
    ended, _ = fold([RINGING, ANSWERED, HANGUP])  # last event received at T0 + 2
    deadline = T0 + 2 + DEFAULT_SETTINGS.cdr_timeout_ms
    assert next_deadline_ms(ended) == deadline
    assert expire(ended, deadline - 1) == (ended, [])

    state, out = expire(ended, deadline)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    first = completions(out)[0]
    assert (state.status, state.cdr_missing, state.revision, state.updated_at_ms) == (
        "completed",
        True,
        3,  # the three live events
        deadline,
    )
    assert (first.source, first.cdr_missing, first.talk_seconds, first.outcome) == (
        "live",
        True,
        6.5,
        "answered",
    )
    assert first.duration_seconds == 12.0
    assert expire(state, deadline + HOUR) == (state, [])  # once is enough

    corrected, out = apply(state, CDR, deadline + MIN)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    second = completions(out)[0]
    assert (second.revision, second.cdr_missing, second.source, second.talk_seconds) == (
        4,
        False,
        "both",
        5.0,
    )
    in_order, _ = fold(SEED)
    assert without_history(corrected) == without_history(in_order)


@pytest.mark.parametrize(
    ("direction", "outcome"), [("outbound", "missed"), ("inbound", "abandoned")]
)
def test_a_call_that_never_hung_up_completes_after_stale_timeout(
    direction: str, outcome: str
) -> None:
    ringing, _ = fold([live("ringing", RINGING_AT, direction=direction)])
    assert expire(ringing, T0 + 4 * HOUR - 1) == (ringing, [])
    state, out = expire(ringing, T0 + 4 * HOUR)
    assert kinds(out) == ["PublishState", "PublishCompleted", "EndLive"]
    assert (state.status, state.cdr_missing, state.outcome) == ("completed", True, outcome)
    assert (state.ring_sec, state.talk_sec) == (None, 0.0)


def test_a_hangup_after_a_timeout_revises_the_call_and_so_does_the_cdr() -> None:
    answered, _ = fold([RINGING, ANSWERED])
    state, out = expire(answered, T0 + 1 + 4 * HOUR)
    assert kinds(out) == ["PublishState", "PublishCompleted", "EndLive"]
    assert (state.talk_sec, completions(out)[0].ended_at_ms) == (None, None)
    state, out = apply(state, HANGUP, T0 + 5 * HOUR)
    assert kinds(out) == ["PublishState", "PublishCompleted"]  # no live-calls upsert
    assert (state.revision, state.talk_sec, state.hangup_at_ms) == (3, 6.5, HANGUP_AT)
    assert completions(out)[0] == completed_call(state)
    assert (completions(out)[0].ended_at_ms, completions(out)[0].talk_seconds) == (HANGUP_AT, 6.5)
    state, out = apply(state, CDR, T0 + 6 * HOUR)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    done = completions(out)[0]
    assert (done.revision, done.cdr_missing, done.talk_seconds) == (4, False, 5.0)


def test_settings_change_the_timeouts() -> None:
    fast = FoldSettings(cdr_timeout_ms=10, stale_timeout_ms=20, retention_ms=30)
    ended, _ = fold([HANGUP])
    ringing, _ = fold([RINGING])
    assert next_deadline_ms(ended, fast) == T0 + 10
    assert next_deadline_ms(ringing, fast) == T0 + 20
    assert expire(ended, T0 + 10, fast)[0].cdr_missing
    assert expire(ringing, T0 + 19, fast)[1] == []
    done, _ = expire(ringing, T0 + 20, fast)
    assert next_deadline_ms(done, fast) == T0 + 50


def test_completed_calls_are_evictable_after_retention() -> None:
    state, _ = fold(SEED)  # completed at T0 + 3
    week = DEFAULT_SETTINGS.retention_ms
    assert week == 7 * 24 * HOUR
    assert next_deadline_ms(state) == T0 + 3 + week
    assert not evictable(state, T0 + 3 + week - 1)
    assert evictable(state, T0 + 3 + week)
    assert evictable(state, T0 + 3 + 10, retention_ms=10)
    ended, _ = fold(SEED[:3])
    assert not evictable(ended, T0 + 100 * week)  # only completed calls leave


def test_every_output_validates_against_the_published_schema() -> None:
    def validator(name: str) -> Draft202012Validator:
        path = ROOT / "schemas" / "json" / file_name(topic(name))
        return Draft202012Validator(json.loads(path.read_text("utf-8")))

    validators = {name: validator(name) for name in (CALL_STATE, CALLS_COMPLETED, LIVE_CALLS)}
    outputs = fold(SEED)[1] + fold([CDR, HANGUP, ANSWERED])[1]
    outputs += expire(fold([RINGING])[0], T0 + 4 * HOUR)[1]
    checked = 0
    for out in outputs:
        if out.value is not None:
            validators[out.topic].validate(msgspec.to_builtins(out.value))
            checked += 1
    assert checked >= 10


def test_a_cdr_that_changes_nothing_the_completed_call_shows_raises_only_its_revision() -> None:
    # Found by hypothesis: two CDR versions that tie on every ordering field and differ only in
    # an empty hotline give the same completed call. The second is another event all the same:
    # the record comes again, one revision up, so that it outranks anything folded from one.
    first = msgspec.structs.replace(CDR, hotline=None, last_updated_date=None, created_date=None)
    second = msgspec.structs.replace(first, hotline="")
    state, out = apply(None, first, T0)
    assert kinds(out) == ["PublishState", "PublishCompleted"]
    record = completions(out)[0]
    state, out = apply(state, second, T0 + 1)
    assert completions(out) == [msgspec.structs.replace(record, revision=2)]
    resent = msgspec.structs.replace(first, send_num_retry=3)  # the provider's re-send
    assert apply(state, resent, T0 + 2) == (state, [])


def test_an_empty_live_hotline_is_no_hotline_as_an_empty_cdr_one_is() -> None:
    # A local call sends "hotline": ""; without its CDR the call must not count on a hotline "".
    event = msgspec.structs.replace(RINGING, hotline="")
    state, _ = apply(None, event, 1)
    assert state.hotline is None
