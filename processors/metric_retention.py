"""Metric rows leave the worker's tables: a share once its window's grace has passed (no
change can reach it then), a window once its grace and its retention have (docs/metrics.md).

As for calls (processors/sweep.py), the timer only reads and sends a command on the row's
partition of ``<app id>-commands``; the commands agent deletes the row, so tables are only
changed inside an agent, on the partition being processed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.callmetrics.windows import (
    MetricSettings,
    WindowKey,
    dimension_key,
    share_expired,
    split_share_key,
    window_expired,
)
from callstream.processors.sink import TableSink
from callstream.processors.sweep import SweptTable, wall_ms

log = logging.getLogger("callstream.processors")

DROP_SHARE, DROP_WINDOW = b"drop-share", b"drop-window"
DROPS = (DROP_SHARE, DROP_WINDOW)
# Sends a command (key, command) to a partition of the commands topic.
SendTo = Callable[[bytes, bytes, int], Awaitable[None]]


class MetricSweep:
    """Every ``interval_s``, finds the expired shares and windows and sends a drop for each."""

    def __init__(
        self,
        shares: SweptTable,
        windows: SweptTable,
        send: SendTo,
        partitions: int,
        *,
        settings: MetricSettings,
        ready: Callable[[], bool],
        interval_s: float,
        now_ms: Callable[[], int] = wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shares = shares
        self.windows = windows
        self.send = send
        self.partitions = partitions
        self.settings = settings
        self.ready = ready
        self.interval_s = interval_s
        self.now_ms = now_ms
        self.monotonic = monotonic
        self._next_s: float | None = None

    async def tick(self) -> int:
        """Send the drops due, when a sweep is due; returns how many were sent."""
        started = self.monotonic()
        if not self.ready() or (self._next_s is not None and started < self._next_s):
            return 0
        self._next_s = started + self.interval_s
        now = self.now_ms()
        # Read whole before sending: a send yields, and the agents may write meanwhile.
        drops = []
        rows = 0
        for key, _ in self.shares.items():
            rows += 1
            if share_expired(key, now, self.settings):
                drops.append((key, DROP_SHARE, split_share_key(key)[1]))
        self.shares.counted(rows)
        rows = 0
        for key, _ in self.windows.items():
            rows += 1
            if window_expired(key, now, self.settings):
                dimension = dimension_key(WindowKey.from_table_key(key).dimension)
                drops.append((key, DROP_WINDOW, murmur2_partition(dimension, self.partitions)))
        self.windows.counted(rows)
        for key, command, partition in drops:
            await self.send(key, command, partition)
        if drops:
            log.info("metric rows past their retention: %d to drop", len(drops))
        return len(drops)


class MetricDrops:
    """A drop command (the commands agent's): delete the share or window, if still expired."""

    def __init__(
        self,
        shares: TableSink,
        windows: TableSink,
        settings: MetricSettings,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.shares = shares
        self.windows = windows
        self.settings = settings
        self.now_ms = now_ms

    async def run(self, partition: int, key: bytes, command: bytes) -> bool:
        """Whether the row was deleted."""
        if command == DROP_SHARE:
            table, expired = self.shares, share_expired
        else:
            table, expired = self.windows, window_expired
        if table.get(partition, key) is None or not expired(key, self.now_ms(), self.settings):
            return False
        await table.write(partition, key, None)
        return True
