"""The metrics' writes, apart from faust: a call's window shares changed with its state, and
each window's shares added up by the window's owner (docs/metrics.md, Exactness).

``ShareWriter`` runs inside the call-state step, on the call's partition, between the state's
write and the input record's ``done``: nothing in it yields to the event loop. It keeps each
changed share until the next flush, which writes it (its changelog record) and sends it to its
window's owner once, however many calls changed it meanwhile, in the same flush as the states
that changed it (processors/batches.py, ``before_flush``), once that flush's changelog is
delivered (``follows_state``): a window holds only shares the changelog holds. After each
rebalance a worker sends every share of its partitions again (``resend``), a thousand a flush,
for those whose changelog was delivered by a worker killed before it sent them
(docs/architecture.md, The worker's guarantee). ``WindowHandler`` is the windows
agent's work per record of share updates: it keeps each changed window until the next flush,
which writes it and publishes its figures once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

from callstream.kafka.partitioning import murmur2_partition, partition_for_key
from callstream.processors.batches import OutputBatches, SharedBatches
from callstream.processors.callmetrics.combine import (
    ShareUpdate,
    Window,
    for_window,
    merged,
    window_metrics,
)
from callstream.processors.callmetrics.contribution import changes, contribution
from callstream.processors.callmetrics.partials import Partial, copied, rebuilt, shares_after
from callstream.processors.callmetrics.windows import (
    MetricSettings,
    WindowKey,
    dimension_key,
    retention_over,
    share_key,
    split_share_key,
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
_decode_updates = msgspec.json.Decoder(list[ShareUpdate]).decode
_decode_window = msgspec.json.Decoder(Window).decode
T = TypeVar("T")
# Told a window size and how many changes to its windows came after their grace.
ObserveLate = Callable[[str, int], None]
# Told a window size each time one of its windows is published.
ObserveEmit = Callable[[str, int], None]
# Rows kept decoded as last written: about 4 KB a window at most, 1.2 KB a share; enough for
# the windows of the last quarter hour and the shares changing most (the longer windows').
DECODED_WINDOWS = 512
DECODED_SHARES = 2048
SHARES_PER_RECORD = 100  # share updates in one record of the share-updates topic, at most
# Shares sent again in one flush, at most: about 300 KB if all of one dimension's partition.
RESEND_PER_FLUSH = 1000
# What a flush will append, reserved on the partitions it goes to when a share or window first
# changes since the last one (processors/batches.py): a share's changelog record and its place
# among the updates, half each (a share with its 16 largest ring times and an agent's name is
# about 300 bytes with its key), a share more in a window, and a window's figures (about 650
# bytes).
SHARE_BYTES = 2 * 384
FIGURES_BYTES = 768


class _Decoded(Generic[T]):
    """The rows last written, decoded, by table key: a share or window changes many times an
    hour, and decoding it costs more than the rest of its change. An entry serves only while
    the store holds the very bytes it was decoded from, so it is never stale; the least
    recently used leave first. Its values are never changed in place (the fold copies)."""

    def __init__(self, decode: Callable[[bytes], T], size: int) -> None:
        self.decode = decode
        self.size = size
        self._held: dict[bytes, tuple[bytes, T]] = {}

    def get(self, key: bytes, stored: bytes | None) -> T | None:
        if stored is None:
            return None
        held = self._held.get(key)
        if held is not None and held[0] == stored:
            return held[1]
        value = self.decode(stored)
        self.keep(key, stored, value)
        return value

    def keep(self, key: bytes, stored: bytes, value: T) -> None:
        self._held.pop(key, None)
        self._held[key] = (stored, value)
        if len(self._held) > self.size:
            del self._held[next(iter(self._held))]


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
        # The shares changed since the last flush, by partition and window: written then.
        self._changed: dict[tuple[int, WindowKey], Partial] = {}
        # Those of them the table held when first read: their writes replace a row. A rows
        # gauge one short until the next count, if a drop deletes one before the flush.
        self._stored: set[tuple[int, WindowKey]] = set()
        # The stored shares to send again, as they were read (resend), in order.
        self._resend: dict[tuple[int, WindowKey], bytes] = {}
        self._decoded = _Decoded(_decode_share, DECODED_SHARES)
        shares.batches.before_flush(self._flush)
        shares.batches.follows_state(topic)

    def resend(self, partitions: Iterable[int]) -> int:
        """Send every stored share of ``partitions`` to its window's owner again, from the next
        flush on, :data:`RESEND_PER_FLUSH` a flush; how many. The window takes one it lacks and
        ignores one it holds, or one overtaken meanwhile (combine.py, ``merged``)."""
        count = 0
        for partition in set(partitions):
            for row, stored in self.shares.scan(partition):
                key, of_partition = split_share_key(row)
                if of_partition == partition:  # a memory store holds every partition's rows
                    self._resend[(partition, key)] = stored
                    count += 1
        self._reserve_resend()
        return count

    def _reserve_resend(self) -> None:
        """Count the next flush's re-sends towards its bounds, and have it come in time."""
        batches = self.shares.batches.get()
        for _, key in itertools.islice(self._resend, RESEND_PER_FLUSH):
            owner = partition_for_key(dimension_key(key.dimension), self.partitions)
            batches.reserve(self.topic, owner, SHARE_BYTES // 2)

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
        batches = self.shares.batches.get()

        def owned(key: WindowKey) -> Partial:
            """The share held since the last flush, changed in place, or a copy of the
            stored one, held from now on."""
            held = self._changed.get((partition, key))
            if held is None:
                row = share_key(key, partition)
                stored = self.shares.get(partition, row)
                held = copied(self._decoded.get(row, stored))
                self._changed[(partition, key)] = held
                if stored is not None:
                    self._stored.add((partition, key))
                owner = partition_for_key(dimension_key(key.dimension), self.partitions)
                batches.reserve(self.shares.changelog, partition, SHARE_BYTES // 2)
                batches.reserve(self.topic, owner, SHARE_BYTES // 2)
            return held

        updated, late = shares_after(found, owned, self.now_ms(), self.settings)
        if late:
            for window in {key.window for key in late}:
                self.observe_late(window, sum(key.window == window for key in late))
            log.warning(
                "call %s changed after the grace of %d of its windows (%s, ...): left out of them",
                call_id,
                len(late),
                late[0].topic_key(),
            )
        for key, share in updated:
            if not share.max_known:
                self._changed[(partition, key)] = rebuilt(share, self._ring_times(partition, key))

    def _flush(self, batches: OutputBatches) -> None:
        """Each share changed since the last flush into its table and to its window's owner,
        once: on the share-updates topic, keyed by dimension, several updates a record."""
        changed, self._changed = self._changed, {}
        stored_before, self._stored = self._stored, set()
        resend = [
            (at, self._resend.pop(at))
            for at in list(itertools.islice(self._resend, RESEND_PER_FLUSH))
        ]
        if self._resend:  # the next thousand in the next flush
            asyncio.get_running_loop().call_soon(self._reserve_resend)
        updates: dict[str, list[ShareUpdate]] = {}
        for (partition, key), share in changed.items():
            row, stored = share_key(key, partition), _encode(share)
            replaces = (partition, key) in stored_before
            self.shares.write_in_flush(batches, partition, row, stored, replaces=replaces)
            self._decoded.keep(row, stored, share)
            update = ShareUpdate(key.table_key(), partition, for_window(share))
            updates.setdefault(key.dimension, []).append(update)
        for (partition, key), stored in resend:
            if (partition, key) not in changed:  # else its newer version goes above
                update = ShareUpdate(key.table_key(), partition, for_window(_decode_share(stored)))
                updates.setdefault(key.dimension, []).append(update)
        for dimension, found in updates.items():
            routing = dimension_key(dimension)
            owner = partition_for_key(routing, self.partitions)
            for start in range(0, len(found), SHARES_PER_RECORD):
                chunk = found[start : start + SHARES_PER_RECORD]
                batches.append(self.topic, owner, routing, _encode(chunk))

    def _ring_times(self, partition: int, key: WindowKey) -> Iterator[int]:
        """The ring times of the partition's calls in window ``key``: read when corrections
        took out every ring time a share kept (rare), from the call-state table."""
        for call_id, stored in self.calls.items():
            if murmur2_partition(call_id, self.partitions) != partition:
                continue
            state = decode_state(stored)
            if state.status != "completed":
                continue
            figures = contribution(completed_call(state), self.settings).get(key)
            if figures is not None and figures.ring_ms is not None:
                yield figures.ring_ms


@dataclass
class _Changed:
    """A window changed since the last flush: where it is kept and published, and its shares."""

    partition: int
    key: WindowKey
    target: int  # its partition of callstream.metrics
    window: Window
    replaces: bool  # the table held it when first read (as ShareWriter._stored)


class WindowHandler:
    """Share updates (the windows agent's input): each window takes the partition's newer share
    and, when it changed, publishes its figures to ``callstream.metrics`` at the next flush."""

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
        # The windows changed since the last flush, by table key: written and published then.
        self._changed: dict[bytes, _Changed] = {}
        self._decoded = _Decoded(_decode_window, DECODED_WINDOWS)
        batches.before_flush(self._flush)

    async def apply(self, partition: int, value: bytes) -> int:
        """Fold a record's share updates into their windows; how many changed one."""
        count = 0
        batches = self.batches.get()
        now = self.now_ms()
        for update in _decode_updates(value):
            held = self._changed.get(update.key)
            if held is None:
                key = WindowKey.from_table_key(update.key)
                if retention_over(key, now, self.settings):
                    continue  # past its retention: dropped, or to be (a share sent again)
                target = await batches.partition(self.metrics_topic, key.topic_key().encode())
                stored = self.windows.get(partition, update.key)
                window = merged(self._decoded.get(update.key, stored), update)
                if window is not None:
                    changelog = self.windows.changelog
                    batches.reserve(changelog, partition, len(stored or b"") + SHARE_BYTES // 2)
                    batches.reserve(self.metrics_topic, target, FIGURES_BYTES)
                    self._changed[update.key] = _Changed(
                        partition, key, target, window, replaces=stored is not None
                    )
            else:
                window = merged(held.window, update)
                if window is not None:
                    if update.partition not in held.window.shares:  # a share more to write
                        batches.reserve(self.windows.changelog, partition, SHARE_BYTES // 2)
                    held.window = window
            count += window is not None  # None: a share it has or one overtaken (a replay)
        return count

    def _flush(self, batches: OutputBatches) -> None:
        """Each window changed since the last flush into its table, and its figures to
        ``callstream.metrics``, once."""
        changed, self._changed = self._changed, {}
        now = self.now_ms()
        for table_key, held in changed.items():
            window = msgspec.structs.replace(held.window, updated_at_ms=now)
            figures = window_metrics(held.key, window, self.settings, now)
            stored = _encode(window)
            self.windows.write_in_flush(
                batches, held.partition, table_key, stored, replaces=held.replaces
            )
            self._decoded.keep(table_key, stored, window)
            topic_key = held.key.topic_key().encode()
            batches.append(self.metrics_topic, held.target, topic_key, _encode(figures))
            self.observe_emit(held.key.window, 1)


class WindowReader:
    """The windows one worker holds, as the query API reads them."""

    def __init__(self, table: TableSink, partitions: int, settings: MetricSettings) -> None:
        self.table = table
        self.partitions = partitions
        self.settings = settings

    def routing_key(self, dimension: str) -> bytes:
        """The key whose partition holds ``dimension``'s windows."""
        return dimension_key(dimension)

    def windows(
        self, dimension: str, value: str | None, window: str, start_ms: int, end_ms: int
    ) -> list[WindowMetrics]:
        """``dimension``'s windows of size ``window`` starting in [start_ms, end_ms), in no
        order (the view sorts what any source gives); only those of ``value`` when given."""
        partition = partition_for_key(self.routing_key(dimension), self.partitions)
        found = []
        for raw_key, stored in self.table.scan(partition, table_prefix(dimension, value)):
            key = WindowKey.from_table_key(raw_key)
            if value is not None and key.value != value:
                continue  # another value that starts with this one and a NUL
            if key.window == window and start_ms <= key.start_ms < end_ms:
                held = _decode_window(stored)
                found.append(window_metrics(key, held, self.settings, held.updated_at_ms))
        return found
