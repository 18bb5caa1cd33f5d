"""The metrics' writes, apart from faust: a call's window shares changed with its state, and
each window's shares added up by the window's owner (docs/metrics.md, Exactness).

``ShareWriter`` runs inside the call-state step, on the call's partition, between the state's
write and the input record's ``done``: nothing in it yields to the event loop, so its changelog
records and share updates go out in the same flush as the state's (processors/batches.py).
``WindowHandler`` is the windows agent's work per share update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import msgspec

from callstream.kafka.partitioning import partition_for_key
from callstream.processors.batches import SharedBatches
from callstream.processors.callmetrics.combine import ShareUpdate, Window, merged, window_metrics
from callstream.processors.callmetrics.contribution import changes, contribution
from callstream.processors.callmetrics.partials import Partial, rebuilt, shares_after
from callstream.processors.callmetrics.windows import (
    MetricSettings,
    WindowKey,
    share_key,
    table_prefix,
)
from callstream.processors.callstate import completed_call
from callstream.processors.sink import TableSink
from callstream.processors.step import decode_state
from callstream.processors.sweep import wall_ms
from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import WindowMetrics

log = logging.getLogger("callstream.processors")

_encode = msgspec.json.Encoder().encode
_decode_share = msgspec.json.Decoder(Partial).decode
_decode_update = msgspec.json.Decoder(ShareUpdate).decode
_decode_window = msgspec.json.Decoder(Window).decode
# Told a window size and how many changes to its windows came after their grace.
ObserveLate = Callable[[str, int], None]
# Told a window size each time one of its windows is published.
ObserveEmit = Callable[[str, int], None]


class ShareWriter:
    """Changes a call's shares of its windows, in the call's partition, and sends each changed
    share to its window's owner (``topic``, keyed by dimension)."""

    def __init__(
        self,
        shares: TableSink,
        calls: TableSink,
        topic: str,
        partitions: int,
        *,
        settings: MetricSettings,
        observe_late: ObserveLate,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.shares = shares
        self.calls = calls
        self.topic = topic
        self.partitions = partitions
        self.settings = settings
        self.observe_late = observe_late
        self.now_ms = now_ms

    async def apply(
        self,
        partition: int,
        call_id: str,
        before: CompletedCall | None,
        after: CompletedCall | None,
    ) -> None:
        """The call's completed record went from ``before`` to ``after``."""
        found = changes(before, after, self.settings)
        if not found:
            return

        def load(key: WindowKey) -> Partial | None:
            stored = self.shares.get(partition, share_key(key, partition))
            return None if stored is None else _decode_share(stored)

        updated, late = shares_after(found, load, self.now_ms(), self.settings)
        if late:
            for window in {key.window for key in late}:
                self.observe_late(window, sum(key.window == window for key in late))
            log.warning(
                "call %s changed after the grace of %d of its windows (%s, ...): left out of them",
                call_id,
                len(late),
                late[0].topic_key(),
            )
        batches = self.shares.batches.get()
        for key, changed in updated:
            share = changed
            if not share.max_known:
                share = rebuilt(share, self._ring_times(partition, key))
            await self.shares.write(partition, share_key(key, partition), _encode(share))
            routing = key.dimension.encode()
            update = ShareUpdate(key.table_key(), partition, share)
            owner = partition_for_key(routing, self.partitions)
            await batches.add(self.topic, owner, routing, _encode(update))

    def _ring_times(self, partition: int, key: WindowKey) -> Iterator[int]:
        """The ring times of the partition's calls in window ``key``: read when corrections
        took out every ring time a share kept (rare), from the call-state table."""
        for call_id, stored in self.calls.items():
            if partition_for_key(call_id, self.partitions) != partition:
                continue
            state = decode_state(stored)
            if state.status != "completed":
                continue
            figures = contribution(completed_call(state), self.settings).get(key)
            if figures is not None and figures.ring_ms is not None:
                yield figures.ring_ms


class WindowHandler:
    """A share update (the windows agent's input): the window takes the partition's newer share
    and, when it changed, publishes its figures to ``callstream.metrics``."""

    def __init__(
        self,
        windows: TableSink,
        metrics_topic: str,
        batches: SharedBatches,
        *,
        settings: MetricSettings,
        observe_emit: ObserveEmit,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.windows = windows
        self.metrics_topic = metrics_topic
        self.batches = batches
        self.settings = settings
        self.observe_emit = observe_emit
        self.now_ms = now_ms

    async def apply(self, partition: int, value: bytes) -> bool:
        """Fold one update into its window; whether the window changed."""
        update = _decode_update(value)
        stored = self.windows.get(partition, update.key)
        window = merged(None if stored is None else _decode_window(stored), update)
        if window is None:
            return False  # a share it has, or one overtaken: a duplicate or a replay
        now = self.now_ms()
        window = msgspec.structs.replace(window, updated_at_ms=now)
        key = WindowKey.from_table_key(update.key)
        figures = window_metrics(key, window, self.settings, now)
        topic_key = key.topic_key().encode()
        batches = self.batches.get()
        target = await batches.partition(self.metrics_topic, topic_key)
        await self.windows.write(partition, update.key, _encode(window))
        await batches.add(self.metrics_topic, target, topic_key, _encode(figures))
        self.observe_emit(key.window, 1)
        return True


class WindowReader:
    """The windows one worker holds, as the query API reads them."""

    def __init__(self, table: TableSink, partitions: int, settings: MetricSettings) -> None:
        self.table = table
        self.partitions = partitions
        self.settings = settings

    def routing_key(self, dimension: str) -> bytes:
        """The key whose partition holds ``dimension``'s windows."""
        return dimension.encode()

    def windows(
        self, dimension: str, value: str | None, window: str, start_ms: int, end_ms: int
    ) -> list[WindowMetrics]:
        """``dimension``'s windows of size ``window`` starting in [start_ms, end_ms), by value
        then start; only those of ``value`` when given."""
        partition = partition_for_key(self.routing_key(dimension), self.partitions)
        found = []
        for raw_key, stored in self.table.store.scan(partition, table_prefix(dimension, value)):
            key = WindowKey.from_table_key(raw_key)
            if value is not None and key.value != value:
                continue  # another value that starts with this one and a NUL
            if key.window == window and start_ms <= key.start_ms < end_ms:
                held = _decode_window(stored)
                found.append(window_metrics(key, held, self.settings, held.updated_at_ms))
        found.sort(key=lambda metrics: (metrics.value, metrics.window_start_ms))
        return found
