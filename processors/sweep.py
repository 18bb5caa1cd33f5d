"""What the worker's timer reads each tick: the open calls, and now and then the whole table.

An open call (ringing, answered, or ended and waiting for its CDR) may be due within minutes,
so every tick reads each one. A completed call is due only when its retention ends, days
later, so a full scan of the table, made rarely, finds those. Without this split every tick
read every state: at a million states that took most of each 10 s tick, the agent waiting.

The agent notes each state it writes (:meth:`OpenCalls.note`). A table recovered from its
changelog is written without the agent, so a full scan rebuilds the set after every rebalance
(even one that gives back the partitions the worker had: another worker may have changed them
meanwhile), as well as on its interval. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

# A stored state's (next deadline in ms, completed?): processors.step.stored_deadline_ms.
DeadlineOf = Callable[[bytes], tuple[int, bool]]


class OpenCalls:
    """The keys of the calls not completed yet, each with its table partition."""

    def __init__(self, full_scan_interval_s: float) -> None:
        self._partitions: dict[bytes, int] = {}
        self._interval_s = full_scan_interval_s
        self._next_full_scan_s: float | None = None  # None: before the first full scan
        self._rebalance = -1

    def note(self, key: bytes, partition: int, is_open: bool) -> None:
        """The agent wrote ``key``'s state: open or not (completed, or deleted)."""
        if is_open:
            self._partitions[key] = partition
        else:
            self._partitions.pop(key, None)

    def full_scan_due(self, now_s: float, rebalance: int) -> bool:
        """Whether this tick scans the whole table: on the interval, or after a rebalance (the
        count of rebalances is ``rebalance``), since recovered states bypassed the agent."""
        if self._next_full_scan_s is None or rebalance != self._rebalance:
            return True
        return now_s >= self._next_full_scan_s

    def rebuilt(self, open_calls: dict[bytes, int], now_s: float, rebalance: int) -> None:
        """A full scan at ``now_s``, after rebalance number ``rebalance``, found ``open_calls``."""
        self._partitions = open_calls
        self._next_full_scan_s = now_s + self._interval_s
        self._rebalance = rebalance

    def items(self) -> list[tuple[bytes, int]]:
        """(key, partition) of every open call, as a list: the agent may note more meanwhile."""
        return list(self._partitions.items())

    def __len__(self) -> int:
        return len(self._partitions)


def due_calls(
    stored: Iterable[tuple[bytes, bytes]], deadline_of: DeadlineOf, now_ms: int
) -> tuple[list[tuple[bytes, bool]], list[bytes]]:
    """Among stored states (key, value): those due by ``now_ms``, each with whether it is
    completed (to evict) or not (to expire), and the keys of the open ones."""
    due: list[tuple[bytes, bool]] = []
    still_open: list[bytes] = []
    for key, value in stored:
        deadline, completed = deadline_of(value)
        if deadline <= now_ms:
            due.append((key, completed))
        if not completed:
            still_open.append(key)
    return due, still_open
