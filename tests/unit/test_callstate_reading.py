"""How the fold reads the CDR's seconds and disposition (processors/cdr_reading.py), rule by
rule, through the fold itself and the module's functions (docs/call-state.md, Reading the CDR).

The sample CDR: duration 12, answer_sec 5, bill_sec 6, record_seconds 5, no disposition.
"""

from __future__ import annotations

from typing import Any

import pytest

from callstream.processors.cdr_reading import (
    cdr_answered,
    cdr_billed_talk_sec,
    cdr_ring_sec,
    cdr_talk_sec,
)
from tests.unit.test_callstate import (
    ANSWERED,
    ANSWERED_AT,
    CDR,
    HANGUP,
    HANGUP_AT,
    RINGING,
    RINGING_AT,
    completions,
    fold,
    live,
    record,
)

UNANSWERED = {"answer_sec": 0, "bill_sec": 0}


# --- answered -----------------------------------------------------------------------------------


def test_disposition_answered_with_nothing_billed_is_answered() -> None:
    cdr = record(disposition="answered", **UNANSWERED)
    assert cdr_answered(cdr) is True
    state, out = fold([RINGING, HANGUP, cdr])  # no answered event either
    assert (state.outcome, state.talk_sec) == ("answered", 0.0)
    assert completions(out)[-1].outcome == "answered"


def test_disposition_cancelled_is_not_answered_whatever_was_billed_or_seen() -> None:
    cdr = record(disposition="cancelled", answer_sec=3, bill_sec=6)
    assert cdr_answered(cdr) is False
    state, _ = fold([RINGING, ANSWERED, HANGUP, cdr])
    assert state.outcome == "missed"  # outbound, like the sample
    # Unanswered: no talk, and it rang until the hangup (the timeline), not the answer.
    assert (state.talk_sec, state.ring_sec, state.ring_sec_estimated) == (
        0.0,
        (HANGUP_AT - RINGING_AT) / 1000,
        False,
    )
    alone, _ = fold([cdr])
    assert (alone.talk_sec, alone.ring_sec, alone.ring_sec_estimated) == (0.0, 12.0, True)
    assert alone.bill_sec == 6.0  # the billing figures stay


@pytest.mark.parametrize("disposition", [..., "busy", "", "ANSWERED"])
def test_without_a_known_disposition_seconds_or_an_answered_event_decide(
    disposition: Any,
) -> None:
    def cdr(**seconds: int) -> Any:
        return record(disposition=disposition, **seconds)

    assert cdr_answered(cdr(answer_sec=5, bill_sec=0)) is True
    assert cdr_answered(cdr(answer_sec=0, bill_sec=6)) is True
    assert cdr_answered(cdr(answer_sec=..., bill_sec=6)) is True
    assert cdr_answered(cdr(**UNANSWERED)) is None  # says nothing: the events decide
    assert fold([RINGING, HANGUP, cdr(answer_sec=5, bill_sec=0)])[0].outcome == "answered"
    assert fold([RINGING, ANSWERED, HANGUP, cdr(**UNANSWERED)])[0].outcome == "answered"
    assert fold([RINGING, HANGUP, cdr(**UNANSWERED)])[0].outcome == "missed"


# --- talk ---------------------------------------------------------------------------------------


def test_talk_is_answer_sec_not_bill_sec_nor_the_timeline() -> None:
    assert (cdr_talk_sec(CDR), cdr_billed_talk_sec(CDR)) == (5.0, 6.0)
    state, _ = fold([RINGING, ANSWERED, HANGUP, CDR])
    assert (state.talk_sec, state.bill_sec) == (5.0, 6.0)  # timeline: 6.5


def test_without_answer_sec_talk_is_the_timeline_else_bill_sec() -> None:
    cdr = record(answer_sec=...)
    assert cdr_talk_sec(cdr) is None
    state, _ = fold([RINGING, ANSWERED, HANGUP, cdr])
    assert state.talk_sec == (HANGUP_AT - ANSWERED_AT) / 1000
    assert fold([RINGING, HANGUP, cdr])[0].talk_sec == 6.0  # bill_sec: no answered event
    assert fold([cdr])[0].talk_sec == 6.0


def test_an_answered_call_billed_nothing_talked_its_answer_sec() -> None:
    state, _ = fold([RINGING, ANSWERED, HANGUP, record(answer_sec=3, bill_sec=0)])
    assert (state.outcome, state.talk_sec, state.bill_sec) == ("answered", 3.0, 0.0)


# --- ring ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "ring"),
    [
        ({}, 7.0),  # duration 12 - answer_sec 5
        ({"answer_sec": 12}, 0.0),
        ({"answer_sec": 20}, 0.0),  # never below 0
        ({"answer_sec": ...}, 6.0),  # duration - bill_sec
        ({"disposition": "cancelled"}, 12.0),  # unanswered: rang throughout
    ],
)
def test_ring_is_estimated_from_duration_less_answer_sec(
    seconds: dict[str, Any], ring: float
) -> None:
    cdr = record(**seconds)
    answered = cdr_answered(cdr) is True
    assert cdr_ring_sec(cdr, answered=answered) == ring
    for events in ([cdr], [RINGING, cdr], [ANSWERED, HANGUP, cdr]):  # no ringing -> end times
        state, _ = fold(events)
        assert (state.ring_sec, state.ring_sec_estimated) == (ring, True)


def test_the_timeline_beats_the_estimate() -> None:
    state, _ = fold([RINGING, ANSWERED, CDR])
    assert (state.ring_sec, state.ring_sec_estimated) == ((ANSWERED_AT - RINGING_AT) / 1000, False)
    unanswered = record(disposition="cancelled", answer_sec=0, bill_sec=0)
    state, _ = fold([live("ringing", RINGING_AT), live("hangup", RINGING_AT + 9_000), unanswered])
    assert (state.ring_sec, state.ring_sec_estimated) == (9.0, False)
