"""The timer's split: open calls read every tick, the whole table now and then."""

from __future__ import annotations

import msgspec

from callstream.processors.callstate import Event, FoldSettings
from callstream.processors.settings import WorkerSettings
from callstream.processors.step import stored_deadline_ms
from callstream.processors.sweep import OpenCalls, due_calls
from tests.unit.test_callstate import ANSWERED, CDR, HANGUP, RINGING, fold

SETTINGS = FoldSettings(cdr_timeout_ms=1_000, stale_timeout_ms=2_000, retention_ms=3_000)


def stored(*events: Event) -> bytes:
    state, _ = fold(events)
    return msgspec.json.encode(state)


def deadline_of(value: bytes) -> tuple[int, bool]:
    return stored_deadline_ms(value, SETTINGS)


def test_the_agent_notes_open_calls_and_drops_completed_ones() -> None:
    calls = OpenCalls(full_scan_interval_s=60)
    calls.note(b"a", 3, is_open=True)
    calls.note(b"b", 1, is_open=True)
    calls.note(b"a", 3, is_open=False)  # completed
    calls.note(b"c", 0, is_open=False)  # never open: nothing to drop
    assert calls.items() == [(b"b", 1)]
    assert len(calls) == 1


def test_a_full_scan_comes_first_then_on_its_interval_and_after_each_rebalance() -> None:
    calls = OpenCalls(full_scan_interval_s=60)
    assert calls.full_scan_due(0.0, rebalance=1)  # nothing known before the first
    calls.rebuilt({b"a": 1}, 0.0, rebalance=1)
    assert calls.items() == [(b"a", 1)]
    assert not calls.full_scan_due(59.9, rebalance=1)
    assert calls.full_scan_due(60.0, rebalance=1)
    # Another rebalance, even one that gives back the same partitions: their recovered states.
    assert calls.full_scan_due(1.0, rebalance=2)


def test_due_calls_sorts_out_what_to_expire_evict_and_keep_open() -> None:
    ringing = stored(RINGING)  # updated at T0 (the fold's clock): stale after 2 s
    ended = stored(RINGING, ANSWERED, HANGUP)  # waits for its CDR 1 s
    completed = stored(RINGING, CDR)  # leaves after 3 s
    (ringing_due, _), (ended_due, _), (completed_due, _) = map(
        deadline_of, (ringing, ended, completed)
    )
    table = [(b"ringing", ringing), (b"ended", ended), (b"completed", completed)]

    due, still_open = due_calls(table, deadline_of, ended_due - 1)
    assert (due, still_open) == ([], [b"ringing", b"ended"])
    due, _ = due_calls(table, deadline_of, ended_due)
    assert due == [(b"ended", False)]
    due, _ = due_calls(table, deadline_of, max(ringing_due, completed_due))
    assert due == [(b"ringing", False), (b"ended", False), (b"completed", True)]


def test_the_full_scan_interval_follows_the_retention_within_bounds() -> None:
    week = WorkerSettings(fold=FoldSettings(retention_ms=7 * 86_400_000))
    assert week.full_scan_interval_s == 3600.0
    short = WorkerSettings(fold=FoldSettings(retention_ms=100_000), timer_interval_s=1.0)
    assert short.full_scan_interval_s == 10.0
    shorter = WorkerSettings(fold=FoldSettings(retention_ms=2_000), timer_interval_s=1.0)
    assert shorter.full_scan_interval_s == 1.0  # never more often than the timer ticks
