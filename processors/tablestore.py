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

Known gap (faust's own table has it too, WAL or not): a write is in the store before its
changelog record is delivered, so a memtable flush followed by a kill can leave the store ahead
of the changelog; the input is processed again, finds its change, and publishes nothing. A fix
would hold writes in memory until their changelog batch is delivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import rocksdict
from aiokafka.structs import TopicPartition

_NO_WAL = rocksdict.WriteOptions()
_NO_WAL.disable_wal = True  # type: ignore[method-assign,assignment]  # a property, stubbed as a method


class TableStore:
    """The store of a faust table whose keys and values are raw bytes."""

    def __init__(self, store: Any) -> None:
        self.store = store  # faust.stores.base.Store
        # faust's RocksDB store keeps one database per partition (a private, stable method).
        # No handle is kept here: faust releases a revoked partition's database (and its lock)
        # by dropping its last reference.
        self._database = getattr(store, "_db_for_partition", None)

    def get(self, partition: int, key: bytes) -> bytes | None:
        if self._database is None:
            stored: bytes | None = self.store.get(key)
            return stored
        value: bytes | None = self._database(partition).get(key)
        return value

    def put(self, partition: int, key: bytes, value: bytes | None) -> None:
        """``value`` under ``key``; ``None`` deletes it."""
        if value is None:
            self.store.pop(key, None)  # rare (eviction): through faust, every partition's copy
        elif self._database is None:
            self.store[key] = value
        else:
            database = self._database(partition)
            database.set_write_options(_NO_WAL)  # on every write (0.1 us): faust may reopen it
            database.put(key, value)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value this worker's partitions hold (through faust: a full scan)."""
        return iter(self.store.items())

    def persisted(self, tp: TopicPartition, offset: int) -> None:
        """The changelog holds the writes up to ``offset``: a restart recovers only past it."""
        self.store.set_persisted_offset(tp, offset)
