"""The live view: the topic's last value per call, tombstones ending calls, and the counts
``/calls/live`` gives per hotline and agent."""

from __future__ import annotations

import msgspec

from callstream.processors.live_view import LiveView, ringing_age_s, summarize
from callstream.processors.params import LiveQuery
from callstream.schemas.calls import LiveCall
from callstream.schemas.queries import LiveCounts, LiveGroup

NOW = 1_760_000_100_000


def live(call_id: str, phase: str = "ringing", **fields: object) -> LiveCall:
    return msgspec.convert(
        {"call_id": call_id, "phase": phase, "updated_at_ms": NOW - 1000, **fields}, LiveCall
    )


def record(call: LiveCall) -> tuple[bytes, bytes]:
    return call.call_id.encode(), msgspec.json.encode(call)


def test_the_last_value_per_call_and_a_tombstone_ends_it() -> None:
    view = LiveView()
    first = live("a", ringing_at_ms=NOW - 5000)
    answered = live("a", "answered", ringing_at_ms=NOW - 5000, answered_at_ms=NOW - 2000)
    assert view.apply(*record(first))
    assert view.apply(*record(live("b")))
    assert view.apply(*record(answered))
    assert sorted(view.calls(), key=lambda call: call.call_id) == [answered, live("b")]
    assert view.apply(b"a", None)
    assert view.apply(b"never-seen", None)  # a tombstone of an unknown call: nothing to do
    assert view.calls() == [live("b")]
    view.clear()
    assert len(view) == 0


def test_a_record_that_is_not_a_live_call_is_dropped_with_what_its_key_held() -> None:
    view = LiveView()
    view.apply(*record(live("a")))
    assert not view.apply(b"a", b"{not json")
    assert not view.apply(b"b", b'{"call_id": "b"}')  # no phase
    assert not view.apply(None, msgspec.json.encode(live("c")))
    assert len(view) == 0


def test_a_ringing_calls_age_is_by_the_workers_clock() -> None:
    assert ringing_age_s(live("a", ringing_at_ms=NOW - 12_500), NOW) == 12.5
    assert ringing_age_s(live("a"), NOW) == 1.0  # no ringing time: since last seen
    assert ringing_age_s(live("a", ringing_at_ms=NOW + 3000), NOW) == 0  # provider's clock ahead
    assert ringing_age_s(live("a", "answered", ringing_at_ms=NOW - 9000), NOW) is None


def test_counts_per_hotline_and_agent_and_in_total() -> None:
    calls = [
        live("r1", hotline="1900", agent_extension="101", ringing_at_ms=NOW - 30_000),
        live("r2", hotline="1900", ringing_at_ms=NOW - 4000),
        live("t1", "answered", hotline="1900", agent_extension="101", ringing_at_ms=NOW - 60_000),
        live("t2", "answered", hotline="1800", agent_extension="102", ringing_at_ms=NOW - 9000),
        live("r3", agent_extension="102", ringing_at_ms=NOW - 1000),
    ]
    answer = summarize(calls, NOW, LiveQuery())
    assert answer.as_of_ms == NOW
    assert answer.totals == LiveCounts(ringing=3, in_conversation=2, oldest_ringing_age_s=30.0)
    assert answer.hotlines == [
        LiveGroup(value="1800", ringing=0, in_conversation=1, oldest_ringing_age_s=None),
        LiveGroup(value="1900", ringing=2, in_conversation=1, oldest_ringing_age_s=30.0),
        LiveGroup(value=None, ringing=1, in_conversation=0, oldest_ringing_age_s=1.0),
    ]
    assert answer.agents == [
        LiveGroup(value="101", ringing=1, in_conversation=1, oldest_ringing_age_s=30.0),
        LiveGroup(value="102", ringing=1, in_conversation=1, oldest_ringing_age_s=1.0),
        LiveGroup(value=None, ringing=1, in_conversation=0, oldest_ringing_age_s=4.0),
    ]
    assert [call.call_id for call in answer.calls] == ["t1", "r1", "t2", "r2", "r3"]


def test_filters_keep_the_calls_of_a_hotline_and_an_agent() -> None:
    calls = [
        live("a", hotline="1900", agent_extension="101"),
        live("b", hotline="1900", agent_extension="102"),
        live("c", hotline="1800", agent_extension="101"),
    ]
    by_hotline = summarize(calls, NOW, LiveQuery(hotline="1900"))
    assert [call.call_id for call in by_hotline.calls] == ["a", "b"]
    assert [group.value for group in by_hotline.agents] == ["101", "102"]
    both = summarize(calls, NOW, LiveQuery(hotline="1900", agent="101"))
    assert [call.call_id for call in both.calls] == ["a"]
    nothing = summarize(calls, NOW, LiveQuery(agent="999"))
    assert nothing.totals == LiveCounts()
    assert (nothing.hotlines, nothing.calls) == ([], [])
