"""Properties of the call-state fold over generated calls: idempotent, order-independent,
monotonic, and one first completion per call, then a higher revision for each change of its
completed record, the last being the final state's record whatever the order, and above every
record a killed run could have published before a replay in another order.

A small simulation plays the part of the agent: a table of states by call id, the events of
several calls interleaved, with duplicates, and timer ticks that call :func:`expire`.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callstream.processors.callstate import (
    EndLive,
    Event,
    Output,
    PublishCompleted,
    PublishLive,
    PublishState,
    apply,
    completed_call,
    content_revision,
    expire,
    live_call,
    without_history,
)
from callstream.schemas.calls import CallState, CompletedCall
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from tests.unit.test_callstate import SEED, T0

BASE_MS = 1_697_595_783_000
MIN = 60_000
HOUR = 60 * MIN
RANK = {"ringing": 0, "answered": 1, "ended": 2, "completed": 3}


@dataclass(frozen=True)
class Tick:
    """Our clock moves on by ``advance_ms`` and the timer runs over the whole table."""

    advance_ms: int


Delivery = Event | Tick

# Small pools, so that generated events often tie on time or fingerprint yet differ.
directions = st.sampled_from(["inbound", "outbound", "local"])
numbers = st.sampled_from([None, "", "100", "101", "0395187319", "842899959300"])
maybe_texts = st.sampled_from([None, "end_call_by_customer", "end_call_by_agent", ""])


def live_events(call_id: str) -> st.SearchStrategy[LiveCallEvent]:
    return st.builds(
        LiveCallEvent,
        call_uuid=st.just(call_id),
        state=st.sampled_from(["ringing", "answered", "hangup"]),
        direction=directions,
        date_time=st.integers(BASE_MS, BASE_MS + 30_000).map(lambda t: t - t % 500),
        created_time=st.none() | st.just(BASE_MS // 1000),
        from_number=numbers,
        to_number=numbers,
        hotline=numbers,
    )


def cdrs(call_id: str) -> st.SearchStrategy[CallDetailRecord]:
    return st.builds(
        CallDetailRecord,
        transaction_id=st.just(call_id),
        direction=directions,
        duration=st.integers(0, 40),
        bill_sec=st.integers(0, 40),
        answer_sec=st.none() | st.integers(0, 40),
        disposition=st.sampled_from([None, "answered", "cancelled", "busy"]),
        time_start_call=st.integers(BASE_MS // 1000, BASE_MS // 1000 + 3),
        state=st.sampled_from(["cdr", None]),
        time_end_call=st.none() | st.integers(BASE_MS // 1000, BASE_MS // 1000 + 60),
        created_date=st.none() | st.just(BASE_MS + 60_000),
        last_updated_date=st.sampled_from([None, BASE_MS + 60_000, BASE_MS + 90_000]),
        call_out_price=st.none() | st.sampled_from([0.0, 55.002, 60.5]),
        send_num_retry=st.none() | st.integers(0, 3),
        phone_number=numbers,
        sip_user=numbers,
        hotline=numbers,
        endby_name=maybe_texts,
    )


def calls(call_id: str) -> st.SearchStrategy[list[Event]]:
    """One call's distinct events: any mix of live events and CDR versions."""
    event: st.SearchStrategy[Event] = live_events(call_id) | cdrs(call_id)
    return st.lists(event, min_size=1, max_size=7)


@st.composite
def streams(draw: st.DrawFn, max_calls: int = 3) -> tuple[list[Event], list[Event]]:
    """(the events of 1-3 calls in a canonical order, a shuffled delivery with duplicates)."""
    ids = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=max_calls))
    events = [item for call_id in dict.fromkeys(ids) for item in draw(calls(call_id))]
    duplicates = draw(st.lists(st.sampled_from(events), max_size=5))
    delivered = draw(st.permutations(events + duplicates))
    return events, delivered


@dataclass
class Run:
    table: dict[str, CallState]
    outputs: list[Output]


def run(deliveries: list[Delivery], *, round_trip: bool = False) -> Run:
    """Fold the deliveries into a table; events arrive 1 ms apart on our clock.

    ``round_trip`` stores each state as JSON and reads it back, as a changelog-backed table does.
    """
    table: dict[str, CallState] = {}
    outputs: list[Output] = []
    now = T0
    for item in deliveries:
        if isinstance(item, Tick):
            now += item.advance_ms
            for call_id in sorted(table):
                table[call_id], out = expire(table[call_id], now)
                outputs += out
            continue
        now += 1
        state, out = apply(table.get(item.call_id), item, now)
        if round_trip:
            state = msgspec.json.decode(msgspec.json.encode(state), type=CallState)
        table[item.call_id] = state
        outputs += out
    return Run(table, outputs)


def by_call(outputs: list[Output]) -> dict[str, list[Output]]:
    found: dict[str, list[Output]] = defaultdict(list)
    for out in outputs:
        found[out.key].append(out)
    return found


def unrevised(call: CompletedCall) -> CompletedCall:
    return msgspec.structs.replace(call, revision=1)


def check_stream(result: Run) -> None:
    """What every output stream must satisfy, call by call, whatever the order."""
    streams_by_call = by_call(result.outputs)
    assert set(streams_by_call) == set(result.table)
    for call_id, final in result.table.items():
        outs = streams_by_call[call_id]
        states = [o.state for o in outs if isinstance(o, PublishState)]
        assert states[-1] == final
        ranks = [RANK[s.status] for s in states]
        assert ranks == sorted(ranks), "a call never goes back (monotonic)"
        assert len(states) == len(set(map(msgspec.json.encode, states))), "no no-op publishes"

        done = [o.call for o in outs if isinstance(o, PublishCompleted)]
        if final.status == "completed":
            # Exactly one first completion, then a higher revision each time the record changed
            # or folded another event; the last one is the final state's record.
            revisions = [c.revision for c in done]
            assert revisions == sorted(set(revisions))
            assert final.revision == revisions[-1]
            assert done[-1] == completed_call(final)
            completed = [s for s in states if s.status == "completed"]
            assert completed[0].revision == content_revision(completed[0].events_seen)
            # The state's revision is the count of its events, or one more than the last when
            # events of one fingerprint changed the record; a record at each new revision.
            for a, b in itertools.pairwise(completed):
                changed = unrevised(completed_call(a)) != unrevised(completed_call(b))
                assert b.revision == max(content_revision(b.events_seen), a.revision + changed)
            assert len(done) == len({s.revision for s in completed})
        else:
            assert done == []

        live = [o for o in outs if isinstance(o, PublishLive | EndLive)]
        if (view := live_call(final)) is not None:
            last = live[-1]  # republished only when more than updated_at_ms changed
            assert isinstance(last, PublishLive)
            assert last.call == msgspec.structs.replace(view, updated_at_ms=last.call.updated_at_ms)
        else:
            assert not live or isinstance(live[-1], EndLive)
        ended = False
        for out in outs:  # nothing re-opens a call once it left live-calls or completed
            if isinstance(out, EndLive | PublishCompleted):
                ended = True
            assert not (ended and isinstance(out, PublishLive))


def check_idempotent(result: Run, events: list[Event]) -> None:
    later = T0 + 10**9
    for item in events:
        state = result.table[item.call_id]
        again, out = apply(state, item, later)
        assert again is state
        assert out == []


@settings(max_examples=200, deadline=None)
@given(streams(), st.booleans())
def test_any_order_with_duplicates_gives_the_same_calls(
    stream: tuple[list[Event], list[Event]], round_trip: bool
) -> None:
    events, delivered = stream
    expected = run(list(events))
    got = run(list(delivered), round_trip=round_trip)
    check_stream(expected)
    check_stream(got)
    check_idempotent(got, events)
    assert {k: without_history(v) for k, v in got.table.items()} == {
        k: without_history(v) for k, v in expected.table.items()
    }
    for call_id, final in got.table.items():
        if final.status == "completed":
            # The highest revision on calls-completed is the same call whatever the order.
            outs = by_call(got.outputs)[call_id]
            done = [o.call for o in outs if isinstance(o, PublishCompleted)][-1]
            assert unrevised(done) == unrevised(completed_call(expected.table[call_id]))


@settings(max_examples=200, deadline=None)
@given(streams(), st.data())
def test_timers_anywhere_complete_once_and_cdrs_correct(
    stream: tuple[list[Event], list[Event]], data: st.DataObject
) -> None:
    events, delivered = stream
    ticks = data.draw(
        st.lists(st.sampled_from([Tick(MIN), Tick(15 * MIN), Tick(4 * HOUR)]), max_size=4)
    )
    mixed: list[Delivery] = data.draw(st.permutations([*delivered, *ticks]))
    got = run(mixed)
    check_stream(got)
    check_idempotent(got, events)
    expected = run(list(events)).table
    for call_id, final in got.table.items():
        want = expected[call_id]
        if final.cdr_missing:  # timed out and no CDR since: as if the timer ran at the end
            assert final.cdr is None
            want = expire(want, 10**15)[0]
        assert without_history(final) == without_history(want)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_order_of_the_samples_with_any_one_duplicate_gives_one_call(
    order: tuple[int, ...],
) -> None:
    expected = run(list(SEED))
    (want,) = expected.table.values()
    seen = set()
    for extra, position in itertools.product(range(4), range(5)):
        delivered: list[Delivery] = [SEED[i] for i in order]
        delivered.insert(position, SEED[extra])
        got = run(delivered)
        check_stream(got)
        assert set(got.table) == {SEED[0].call_id}
        (final,) = got.table.values()
        seen.add(msgspec.json.encode(without_history(final)))
        done = [o.call for o in got.outputs if isinstance(o, PublishCompleted)]
        # A live event folded after the CDR may change the completed call (a new revision);
        # the last revision is the in-order call whatever the order.
        assert unrevised(done[-1]) == unrevised(completed_call(want))
        if set(delivered[: delivered.index(SEED[3])]) == set(SEED[:3]):  # CDR after them all
            assert [c.revision for c in done] == [4]
    assert len(seen) == 1


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_no_record_of_a_killed_run_outranks_the_replay_in_another_order(
    stream: tuple[list[Event], list[Event]], data: st.DataObject
) -> None:
    # A worker killed before its changelog published what it folded from some of the events,
    # in its order, timers included; the replay folds them all in another order, and its timer
    # completes what is still open. Every record at or above the replay's last revision of a
    # call must be that call's final record: consumers keep the highest revision.
    events = stream[0]
    killed_order = data.draw(st.permutations(events))
    ticks = data.draw(st.lists(st.sampled_from([Tick(15 * MIN), Tick(4 * HOUR)]), max_size=2))
    killed_at = data.draw(st.integers(0, len(events)))
    killed = data.draw(st.permutations([*killed_order[:killed_at], *ticks]))
    replay = [*data.draw(st.permutations(events)), Tick(4 * HOUR)]
    published = run(killed).outputs + run(replay).outputs
    final = run(replay).table
    for call_id, records in by_call(published).items():
        top = completed_call(final[call_id])
        for record in (o.call for o in records if isinstance(o, PublishCompleted)):
            assert record.revision < top.revision or unrevised(record) == unrevised(top)
