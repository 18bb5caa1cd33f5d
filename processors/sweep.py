"""What the worker's timer reads each tick: the open calls due, and now and then the whole table.

An open call (ringing, answered, or ended and waiting for its CDR) may be due within minutes:
the agent notes each one's deadline as it writes its state, and every tick reads those due
(their stored state decides). A completed call is due only when its retention ends, days
later, so a full scan of the table, made rarely, finds those. Without this split every tick
read every state: at a million states that took most of each 10 s tick, the agent waiting.

The agent notes each state it writes (:meth:`OpenCalls.note`). A table recovered from its
changelog is written without the agent, so a full scan rebuilds the set after every rebalance
(even one that gives back the partitions the worker had: another worker may have changed them
meanwhile), as well as on its interval.

Every table change happens inside an agent, on the partition of the record it processes (faust's
RocksDB store requires it): :class:`Sweep` only reads the table and sends a command (``expire``,
``evict``), keyed by call id, to an internal topic the agent also consumes. All of one call's
records - events, CDR, commands - share a key and so a partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from callstream.kafka.partitioning import murmur2_partition

log = logging.getLogger("callstream.processors")

# A stored state's (next deadline in ms, completed?): processors.step.stored_deadline_ms.
DeadlineOf = Callable[[bytes], tuple[int, bool]]
# Sends a command (EXPIRE or EVICT) for a call's key to the commands topic.
Send = Callable[[bytes, bytes], Awaitable[None]]
EXPIRE, EVICT = b"expire", b"evict"
# Due calls read between two yields to the event loop (a few ms of reads): tens of thousands
# due at once (CDRs lost in bulk) would otherwise stall every agent and query for the tick.
DUE_READS_PER_YIELD = 1000


def wall_ms() -> int:
    """The wall clock in ms: the fold's deadlines are in the records' time."""
    return time.time_ns() // 1_000_000


class OpenCalls:
    """The calls not completed yet, each with its table partition and next deadline, so that a
    tick reads only the calls due: reading every open call each tick stalled the agents and
    queries for 0.2-0.3 s with the calls bench/pipeline.py leaves open."""

    def __init__(self, full_scan_interval_s: float, deadline_of: DeadlineOf) -> None:
        self._calls: dict[bytes, tuple[int, int]] = {}  # key -> (partition, deadline ms)
        self.deadline_of = deadline_of  # the sweep's too
        self._interval_s = full_scan_interval_s
        self._next_full_scan_s: float | None = None  # None: before the first full scan
        self._rebalance = -1

    def note(self, key: bytes, partition: int, open_state: bytes | None) -> None:
        """The agent wrote ``key``'s state: ``open_state`` is it when the call is open, None
        when it is completed or deleted."""
        deadline = None if open_state is None else self.deadline_of(open_state)[0]
        self.noted(key, partition, deadline)

    def noted(self, key: bytes, partition: int, deadline: int | None) -> None:
        """:meth:`note` with the open state's deadline known (None: not open)."""
        if deadline is None:
            self._calls.pop(key, None)
        else:
            self._calls[key] = (partition, deadline)

    def full_scan_due(self, now_s: float, rebalance: int) -> bool:
        """Whether this tick scans the whole table: on the interval, or after a rebalance (the
        count of rebalances is ``rebalance``), since recovered states bypassed the agent."""
        if self._next_full_scan_s is None or rebalance != self._rebalance:
            return True
        return now_s >= self._next_full_scan_s

    def rebuilt(
        self, open_calls: dict[bytes, tuple[int, int]], now_s: float, rebalance: int
    ) -> None:
        """A full scan at ``now_s``, after rebalance number ``rebalance``, found ``open_calls``
        (key: partition, deadline)."""
        self._calls = open_calls
        self._next_full_scan_s = now_s + self._interval_s
        self._rebalance = rebalance

    def due(self, now_ms: int) -> list[tuple[bytes, int]]:
        """(key, partition) of each open call whose deadline is at or before ``now_ms``, as a
        list: the agent may note more meanwhile."""
        return [(key, partition) for key, (partition, at) in self._calls.items() if at <= now_ms]

    def items(self) -> list[tuple[bytes, int]]:
        """(key, partition) of every open call."""
        return [(key, partition) for key, (partition, _) in self._calls.items()]

    def __len__(self) -> int:
        return len(self._calls)


def due_calls(
    stored: Iterable[tuple[bytes, bytes]], deadline_of: DeadlineOf, now_ms: int
) -> tuple[list[tuple[bytes, bool]], list[tuple[bytes, int]]]:
    """Among stored states (key, value): those due by ``now_ms``, each with whether it is
    completed (to evict) or not (to expire), and the open ones' keys and deadlines."""
    due: list[tuple[bytes, bool]] = []
    still_open: list[tuple[bytes, int]] = []
    for key, value in stored:
        deadline, completed = deadline_of(value)
        if deadline <= now_ms:
            due.append((key, completed))
        if not completed:
            still_open.append((key, deadline))
    return due, still_open


class SweptTable(Protocol):
    """What the sweep reads of the call-state table (processors/sink.py's TableSink)."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]: ...

    def counted(self, rows: int) -> None: ...


class Sweep:
    """The timer's tick: find the calls whose deadline passed, reading only, and send the agent
    a command for each (``EXPIRE`` an open call, ``EVICT`` a completed one past retention).

    Reads the open calls due, yielding to the event loop every :data:`DUE_READS_PER_YIELD`, or
    now and then every state, without yielding (a rebalance could close a partition's database
    under the scan, and a state written meanwhile could be missed by the open set it rebuilds).
    A command checks its call's deadline again, so a call changed since it was read is safe.
    """

    def __init__(
        self,
        table: SweptTable,
        open_calls: OpenCalls,
        send: Send,
        partitions: int,
        *,
        ready: Callable[[], bool],
        rebalances: Callable[[], int],
        now_ms: Callable[[], int] = wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``partitions``: the table's (its input topics'); ``ready``: the tables are recovered
        and no rebalance runs; ``rebalances``: how many rebalances the worker went through."""
        self.table = table
        self.open_calls = open_calls
        self.send = send
        self.partitions = partitions
        self.ready = ready
        self.rebalances = rebalances
        self.now_ms = now_ms
        self.monotonic = monotonic

    async def tick(self) -> int:
        """Send a command for each call due now; returns how many were sent."""
        if not self.ready():
            return 0  # a table still recovering would be read in part
        now, started = self.now_ms(), self.monotonic()
        rebalance = self.rebalances()
        if self.open_calls.full_scan_due(started, rebalance):
            due = self._full_scan(now, started, rebalance)
        else:
            due = await self._open_calls_due(now, rebalance)
        for key, completed in due:
            await self.send(key, EVICT if completed else EXPIRE)
        return len(due)

    def _full_scan(self, now: int, started: float, rebalance: int) -> list[tuple[bytes, bool]]:
        rows = 0

        def counting() -> Iterable[tuple[bytes, bytes]]:
            nonlocal rows
            for item in self.table.items():
                rows += 1
                yield item

        due, still_open = due_calls(counting(), self.open_calls.deadline_of, now)
        self.table.counted(rows)
        # The table's partition of a key is its input records' (the default partitioner).
        found = {
            key: (murmur2_partition(key, self.partitions), deadline) for key, deadline in still_open
        }
        self.open_calls.rebuilt(found, self.monotonic(), rebalance)
        log.info(
            "scanned the call-state table in %.2f s: %d rows, %d open, %d due",
            self.monotonic() - started,  # the agent waited this long: say so
            rows,
            len(found),
            len(due),
        )
        return due

    async def _open_calls_due(self, now: int, rebalance: int) -> list[tuple[bytes, bool]]:
        read: dict[bytes, tuple[int, bytes]] = {}  # key -> (partition, stored state)
        for index, (key, partition) in enumerate(self.open_calls.due(now)):
            if index and index % DUE_READS_PER_YIELD == 0:
                await asyncio.sleep(0)
                if not self.ready() or self.rebalances() != rebalance:
                    return []  # a partition may be gone: the next tick scans anew
            value = self.table.get(partition, key)
            if value is None:  # deleted since: not by the agent, which notes its deletes
                self.open_calls.noted(key, partition, None)
            else:
                read[key] = (partition, value)
        stored = ((key, value) for key, (_, value) in read.items())
        due, still_open = due_calls(stored, self.open_calls.deadline_of, now)
        deadlines = dict(still_open)
        for key, (partition, _) in read.items():
            # The stored state decides: an early deadline is corrected, a completed call leaves.
            self.open_calls.noted(key, partition, deadlines.get(key))
        return due
