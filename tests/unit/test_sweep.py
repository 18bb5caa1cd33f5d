"""The timer's split: the open calls due read every tick, the whole table now and then; the sweep
sends a command for each call due, on its own with a fake table and clocks."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.callstate import Event, FoldSettings
from callstream.processors.settings import WorkerSettings
from callstream.processors.step import stored_deadline_ms
from callstream.processors.sweep import (
    DUE_READS_PER_YIELD,
    EVICT,
    EXPIRE,
    OpenCalls,
    Sweep,
    due_calls,
)
from tests.unit.test_callstate import ANSWERED, CDR, HANGUP, RINGING, fold

SETTINGS = FoldSettings(cdr_timeout_ms=1_000, stale_timeout_ms=2_000, retention_ms=3_000)


def stored(*events: Event) -> bytes:
    state, _ = fold(events)
    return msgspec.json.encode(state)


def deadline_of(value: bytes) -> tuple[int, bool]:
    return stored_deadline_ms(value, SETTINGS)


def test_the_agent_notes_open_calls_and_drops_completed_ones() -> None:
    calls = OpenCalls(full_scan_interval_s=60, deadline_of=deadline_of)
    ringing, ended = stored(RINGING), stored(RINGING, ANSWERED, HANGUP)
    calls.note(b"a", 3, ringing)
    calls.note(b"b", 1, ended)
    calls.note(b"a", 3, None)  # completed
    calls.note(b"c", 0, None)  # never open: nothing to drop
    assert calls.items() == [(b"b", 1)]
    assert len(calls) == 1
    # Each with its deadline: a tick reads only the calls due.
    calls.note(b"a", 3, ringing)
    (ringing_due, _), (ended_due, _) = deadline_of(ringing), deadline_of(ended)
    assert ended_due < ringing_due  # waiting for its CDR: 1 s; ringing: 2 s
    assert calls.due(ended_due - 1) == []
    assert calls.due(ended_due) == [(b"b", 1)]
    assert sorted(calls.due(ringing_due)) == [(b"a", 3), (b"b", 1)]


def test_a_full_scan_comes_first_then_on_its_interval_and_after_each_rebalance() -> None:
    calls = OpenCalls(full_scan_interval_s=60, deadline_of=deadline_of)
    assert calls.full_scan_due(0.0, rebalance=1)  # nothing known before the first
    calls.rebuilt({b"a": (1, 5_000)}, 0.0, rebalance=1)
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
    assert (due, still_open) == ([], [(b"ringing", ringing_due), (b"ended", ended_due)])
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


class Table:
    """The call-state table as the sweep reads it, with a log of the reads."""

    def __init__(self, rows: dict[bytes, tuple[int, bytes]]) -> None:
        self.rows = rows  # key -> (partition, stored state)
        self.reads: list[str] = []
        self.count: int | None = None

    def get(self, partition: int, key: bytes) -> bytes | None:
        self.reads.append("get")
        row = self.rows.get(key)
        return row[1] if row is not None and row[0] == partition else None

    def items(self) -> list[tuple[bytes, bytes]]:
        self.reads.append("items")
        return [(key, value) for key, (_, value) in self.rows.items()]

    def counted(self, rows: int) -> None:
        self.count = rows


def partition(key: bytes) -> int:
    """The table partition of ``key``: its input records' (the default partitioner)."""
    return murmur2_partition(key, 12)


class Clock:
    def __init__(self) -> None:
        self.ms = 0
        self.s = 0.0


def sweep_of(
    table: Table, calls: OpenCalls, clock: Clock, ready: list[bool], rebalance: list[int]
) -> tuple[Sweep, list[tuple[bytes, bytes]]]:
    sent: list[tuple[bytes, bytes]] = []

    async def send(key: bytes, command: bytes) -> None:
        sent.append((key, command))

    sweep = Sweep(
        table,
        calls,
        send,
        partitions=12,
        ready=lambda: ready[0],
        rebalances=lambda: rebalance[0],
        now_ms=lambda: clock.ms,
        monotonic=lambda: clock.s,
    )
    return sweep, sent


async def test_the_sweep_waits_for_the_tables_then_scans_them_whole_first() -> None:
    ringing, completed = stored(RINGING), stored(RINGING, CDR)
    ringing_due, _ = deadline_of(ringing)
    completed_due, _ = deadline_of(completed)
    table = Table({b"ringing": (partition(b"ringing"), ringing), b"done": (3, completed)})
    calls, clock, ready, rebalance = OpenCalls(60, deadline_of), Clock(), [False], [1]
    sweep, sent = sweep_of(table, calls, clock, ready, rebalance)
    clock.ms = max(ringing_due, completed_due)

    assert await sweep.tick() == 0  # recovering: a table read now would be read in part
    assert (table.reads, sent) == ([], [])
    ready[0] = True
    assert await sweep.tick() == 2
    assert table.reads == ["items"]
    assert sent == [(b"ringing", EXPIRE), (b"done", EVICT)]
    assert table.count == 2  # the full scan counts the rows
    assert calls.items() == [(b"ringing", partition(b"ringing"))]  # open, and where


async def test_between_full_scans_the_sweep_reads_only_the_open_calls() -> None:
    ringing, completed = stored(RINGING), stored(RINGING, CDR)
    table = Table({key: (partition(key), ringing) for key in (b"ringing", b"gone")})
    calls, clock, ready, rebalance = OpenCalls(60, deadline_of), Clock(), [True], [1]
    sweep, sent = sweep_of(table, calls, clock, ready, rebalance)
    await sweep.tick()  # the first full scan, at 0: nothing due
    assert sent == []
    table.reads.clear()
    clock.s = 30.0
    assert await sweep.tick() == 0
    assert table.reads == []  # open calls, none due yet: none read
    del table.rows[b"gone"]  # deleted past the agent: the sweep forgets it
    table.rows[b"done"] = (
        partition(b"done"),
        completed,
    )  # completed, not open: only a full scan finds it
    clock.ms, clock.s = max(deadline_of(completed)[0], deadline_of(ringing)[0]), 59.0
    assert await sweep.tick() == 1
    assert sent == [(b"ringing", EXPIRE)]
    assert table.reads == ["get", "get"]
    assert [key for key, _ in calls.items()] == [b"ringing"]
    rebalance[0] = 2  # recovered rows bypassed the agent: a full scan finds them
    await sweep.tick()
    assert table.reads[-1] == "items"
    assert sent[-1] == (b"done", EVICT)


def open_calls_table(count: int) -> tuple[Table, OpenCalls, Clock]:
    """``count`` ringing calls, noted open by the agent, all due; the first full scan done."""
    ringing = stored(RINGING)
    keys = [b"call-%d" % index for index in range(count)]
    table = Table({key: (partition(key), ringing) for key in keys})
    calls, clock = OpenCalls(60, deadline_of), Clock()
    clock.ms, clock.s = deadline_of(ringing)[0], 1.0
    calls.rebuilt({key: (partition(key), clock.ms) for key in keys}, now_s=0.0, rebalance=1)
    return table, calls, clock


async def test_reading_many_due_calls_lets_the_agents_and_queries_run_between_reads() -> None:
    table, calls, clock = open_calls_table(2 * DUE_READS_PER_YIELD + 500)
    sweep, sent = sweep_of(table, calls, clock, [True], [1])
    turns = 0  # the event loop's turns taken by another task while the tick runs
    seen_at_reads: list[int] = []
    get = table.get

    def reading(partition: int, key: bytes) -> bytes | None:
        seen_at_reads.append(turns)
        return get(partition, key)

    table.get = reading  # type: ignore[method-assign]

    async def other_task() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(other_task())
    try:
        assert await sweep.tick() == len(seen_at_reads) == 2 * DUE_READS_PER_YIELD + 500
    finally:
        running.cancel()
    assert len(set(seen_at_reads)) == 3  # the other task ran between the three chunks
    assert {command for _, command in sent} == {EXPIRE}


@pytest.mark.parametrize("change", ["rebalance", "not ready"])
async def test_a_rebalance_during_the_due_calls_read_ends_the_tick_without_commands(
    change: str,
) -> None:
    table, calls, clock = open_calls_table(2 * DUE_READS_PER_YIELD)
    ready, rebalance = [True], [1]
    sweep, sent = sweep_of(table, calls, clock, ready, rebalance)

    async def rebalanced() -> None:  # runs at the tick's first yield
        if change == "rebalance":
            rebalance[0] = 2
        else:
            ready[0] = False

    asyncio.get_running_loop().create_task(rebalanced())
    assert await sweep.tick() == 0
    assert table.reads == ["get"] * DUE_READS_PER_YIELD  # no read after the change
    assert sent == []
    ready[0] = True
    await sweep.tick()  # the next tick reads the calls again, the table whole after a rebalance
    assert table.reads[-1] == ("items" if change == "rebalance" else "get")
    assert len(sent) == 2 * DUE_READS_PER_YIELD


async def test_a_deadline_noted_too_early_is_corrected_from_the_stored_state() -> None:
    ringing = stored(RINGING)
    table = Table({b"ringing": (partition(b"ringing"), ringing)})
    calls, clock = OpenCalls(60, deadline_of), Clock()
    sweep, sent = sweep_of(table, calls, clock, [True], [1])
    await sweep.tick()  # the first full scan
    calls.noted(b"ringing", partition(b"ringing"), 0)  # as after a recovery: too early
    clock.ms, clock.s = deadline_of(ringing)[0] - 1, 1.0
    assert await sweep.tick() == 0  # read, and not due: no command
    assert sent == []
    assert calls.due(clock.ms) == []  # its stored deadline from now on
    assert calls.due(deadline_of(ringing)[0]) == [(b"ringing", partition(b"ringing"))]
