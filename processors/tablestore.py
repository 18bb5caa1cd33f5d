"""Bytes in and out of the call-state table's store, by partition.

The table's keys and values are already bytes, yet every read and write through faust's store
looks up its serializers twice and updates a key-to-partition cache under a lock: together
more than the fold costs. With RocksDB this reads and writes the partition's database directly
(the one faust's own ``_set`` and ``_get`` pick for the record being processed); other stores
(memory, in tests) go through faust.

RocksDB's write-ahead log is off for those databases: each write appended to it with a system
call of its own, the worker's largest single cost. The changelog topic is the table's log. A
database without its WAL that is closed keeps everything (RocksDB flushes it); one whose worker
is killed comes back as of its last flush, a consistent prefix of its writes with the changelog
offset it had recorded, and faust recovers the rest from the changelog. Once a handle skips the
WAL, every write through it does (faust's own too), so none logged can follow one lost.

A write reaches the store only once its changelog record is delivered: until then it waits in
memory, where reads find it. Written at once, a memtable flush followed by a kill could leave
the store ahead of the changelog: the input, processed again, would find its change already
made and publish nothing, and the changelog would never get it (faust's own table has that
gap). The writes wait in order, and each is applied when the changelog batch holding it is
delivered, before the changelog offset the store records: a store never holds a write the
changelog lacks, nor records an offset whose writes it lacks.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import rocksdict
from aiokafka.structs import TopicPartition

from callstream.processors.batches import Delivered
from callstream.processors.private_api import partition_databases

_NO_WAL = rocksdict.WriteOptions()
_NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property, stubbed as a method


class TableStore:
    """The store of a faust table whose keys and values are raw bytes."""

    def __init__(self, store: Any, databases: Callable[[int], Any] | None) -> None:
        """``store``: the table's faust store; ``databases``: its database of a partition, for
        RocksDB (None: the store has none, and is used through faust). No handle is kept:
        faust releases a revoked partition's database (and its lock) by dropping its last
        reference."""
        self.store = store  # faust.stores.base.Store
        self._database = databases
        self._sequence = 0
        # Writes whose changelog record is not delivered yet: in order, and the latest by key.
        self._waiting: dict[int, deque[tuple[int, bytes, bytes | None]]] = {}
        self._latest: dict[bytes, tuple[int, bytes | None]] = {}

    @classmethod
    def of(cls, store: Any) -> TableStore:
        """A faust table's store (``table.data``), through its partition databases when it has
        them (processors/private_api.py)."""
        return cls(store, partition_databases(store))

    def get(self, partition: int, key: bytes) -> bytes | None:
        latest = self._latest.get(key)
        if latest is not None:
            return latest[1]
        if self._database is None:
            stored: bytes | None = self.store.get(key)
            return stored
        value: bytes | None = self._database(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes | None) -> Delivered:
        """``value`` under ``key`` (``None`` deletes it), applied to the store by the returned
        callback: call it once the changelog record of this write is delivered."""
        self._sequence += 1
        self._waiting.setdefault(partition, deque()).append((self._sequence, key, value))
        self._latest[key] = (self._sequence, value)
        return functools.partial(self._delivered, partition, self._sequence)

    def _delivered(self, partition: int, sequence: int, tp: TopicPartition, offset: int) -> None:
        """The changelog holds this partition's writes up to ``sequence``, and up to ``offset``:
        apply them in order, then record the offset, so a restart recovers only past it."""
        waiting = self._waiting[partition]
        writes: list[tuple[bytes, bytes | None]] = []
        while waiting and waiting[0][0] <= sequence:
            written, key, value = waiting.popleft()
            writes.append((key, value))
            if self._latest[key][0] == written:  # no later write of it waits
                del self._latest[key]
        self._apply(partition, writes)
        self.store.set_persisted_offset(tp, offset)

    def _apply(self, partition: int, writes: list[tuple[bytes, bytes | None]]) -> None:
        if self._database is None:
            for key, value in writes:
                if value is None:
                    self.store.pop(key, None)
                else:
                    self.store[key] = value
            return
        # Not through faust's store, even to delete: it looks a key up in the partition of
        # the record it thinks is being processed, and a delivery callback runs in the
        # context of whichever record started the flush, so a delete found nothing. One
        # write batch, as faust applies its changelog: a call into RocksDB a write, not three.
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in writes:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        database = self._database(partition)
        database.set_write_options(_NO_WAL)  # the handle's, for faust's writes too: it may reopen
        database.write(batch)

    def scan(self, partition: int, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The keys starting with ``prefix`` in ``partition``, and their values, the waiting
        writes included; not in order. Keys must be unique across partitions."""
        latest = {key: value for key, (_, value) in self._latest.items() if key.startswith(prefix)}
        if self._database is None:
            rows: Iterable[tuple[bytes, bytes]] = self.store.items()
        else:
            rows = self._database(partition).items(from_key=prefix)
        for key, value in rows:
            if not key.startswith(prefix):
                if self._database is None:
                    continue
                break  # RocksDB iterates in key order: past the prefix, no more
            if key not in latest:
                yield key, value
        for key, waiting in latest.items():
            if waiting is not None:
                yield key, waiting

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value this worker's partitions hold, the waiting writes included."""
        latest = dict(self._latest)  # as of now: the agent may write while this is read
        for key, value in self.store.items():
            if key not in latest:
                yield key, value
        for key, (_, waiting) in latest.items():
            if waiting is not None:
                yield key, waiting
