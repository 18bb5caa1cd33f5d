"""The timer's light read of a stored state gives the deadline the full decode gives."""

from __future__ import annotations

import msgspec
import pytest

from callstream.processors.callstate import FoldSettings, next_deadline_ms
from callstream.processors.step import decode_state, stored_deadline_ms
from tests.unit.test_callstate import ANSWERED, CDR, HANGUP, RINGING, Event, fold

SETTINGS = FoldSettings(cdr_timeout_ms=1_000, stale_timeout_ms=2_000, retention_ms=3_000)


@pytest.mark.parametrize(
    "events",
    [(RINGING,), (RINGING, ANSWERED), (RINGING, ANSWERED, HANGUP), (CDR,), (HANGUP, CDR)],
    ids=["ringing", "answered", "ended", "cdr-only", "completed"],
)
def test_the_light_read_agrees_with_the_full_decode(events: tuple[Event, ...]) -> None:
    state, _ = fold(events)
    stored = msgspec.json.encode(state)
    deadline, completed = stored_deadline_ms(stored, SETTINGS)
    assert deadline == next_deadline_ms(decode_state(stored), SETTINGS)
    assert completed == (state.status == "completed")
