"""The table store holds a write back until its changelog record is delivered."""

from __future__ import annotations

import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import rocksdict
from aiokafka.structs import TopicPartition
from faust.streams import _current_event  # faust's record being processed (test only)

from callstream.processors.app import TABLE, create_worker_app
from callstream.processors.settings import WorkerSettings
from callstream.processors.tablestore import TableStore

CHANGELOG = TopicPartition("worker-call-state-changelog", 0)


class FaustStore:
    """What TableStore uses of faust's memory store, with the order things happened in."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data = dict(data or {})
        self.log: list[tuple[str, Any]] = []

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.data[key] = value
        self.log.append(("set", key))

    def pop(self, key: bytes, default: None) -> bytes | None:
        self.log.append(("del", key))
        return self.data.pop(key, default)

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self.data.items())

    def set_persisted_offset(self, tp: TopicPartition, offset: int) -> None:
        self.log.append(("offset", offset))


def test_a_write_is_read_back_at_once_and_stored_once_delivered() -> None:
    faust_store = FaustStore()
    store = TableStore(faust_store, None)
    delivered = store.put(0, b"call", b"v1")
    assert store.get(0, b"call") == b"v1"
    assert faust_store.data == {}  # a kill now leaves the store behind the changelog, not ahead
    delivered(CHANGELOG, 41)
    assert faust_store.data == {b"call": b"v1"}
    assert faust_store.log == [("set", b"call"), ("offset", 41)]  # the offset after the write
    assert store.get(0, b"call") == b"v1"


def test_a_delivery_applies_the_partitions_earlier_writes_in_order() -> None:
    faust_store = FaustStore()
    store = TableStore(faust_store, None)
    store.put(0, b"a", b"a1")
    store.put(1, b"other", b"o1")  # another partition: its own changelog batch
    store.put(0, b"a", b"a2")
    last = store.put(0, b"b", b"b1")
    later = store.put(0, b"a", b"a3")  # the next flush's
    last(CHANGELOG, 7)
    assert faust_store.data == {b"a": b"a2", b"b": b"b1"}
    assert faust_store.log == [("set", b"a"), ("set", b"a"), ("set", b"b"), ("offset", 7)]
    assert store.get(0, b"a") == b"a3"  # still waiting
    later(CHANGELOG, 8)
    assert faust_store.data[b"a"] == b"a3"
    assert b"other" not in faust_store.data


def test_a_delete_waits_too() -> None:
    faust_store = FaustStore({b"old": b"completed"})
    store = TableStore(faust_store, None)
    delivered = store.put(0, b"old", None)
    assert store.get(0, b"old") is None
    assert faust_store.data == {b"old": b"completed"}
    delivered(CHANGELOG, 3)
    assert faust_store.data == {}


def test_items_include_the_waiting_writes() -> None:
    faust_store = FaustStore({b"kept": b"k", b"changed": b"c1", b"deleted": b"d"})
    store = TableStore(faust_store, None)
    store.put(0, b"changed", b"c2")
    store.put(0, b"deleted", None)
    store.put(0, b"new", b"n")
    assert dict(store.items()) == {b"kept": b"k", b"changed": b"c2", b"new": b"n"}


class RocksDB:
    """A partition's database: a real rocksdict one, noting the write options it was given."""

    def __init__(self, path: Path) -> None:
        self.db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True))
        self.options: Any = None

    @property
    def data(self) -> dict[bytes, bytes]:
        return dict(self.db.items())

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.db.get(key)
        return value

    def write(self, batch: rocksdict.WriteBatch) -> None:
        assert self.options is not None  # every write skips the WAL
        assert self.options.disable_wal
        self.db.write(batch, self.options)

    def set_write_options(self, options: Any) -> None:
        self.options = options


class RocksDBStore(FaustStore):
    """faust's RocksDB store: a database per partition (its _db_for_partition)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.databases: dict[int, RocksDB] = {}

    def databases_of(self, partition: int) -> RocksDB:
        if partition not in self.databases:
            self.databases[partition] = RocksDB(self.path / str(partition))
        return self.databases[partition]


def test_with_rocksdb_a_delivered_write_goes_to_its_partitions_database(tmp_path: Path) -> None:
    faust_store = RocksDBStore(tmp_path)
    store = TableStore(faust_store, faust_store.databases_of)
    delivered = store.put(3, b"call", b"v1")
    assert faust_store.databases == {}
    delivered(TopicPartition("worker-call-state-changelog", 3), 9)
    assert faust_store.databases[3].data == {b"call": b"v1"}
    assert store.get(3, b"call") == b"v1"
    assert faust_store.log == [("offset", 9)]


class Record:
    """What faust's store reads of the event being processed."""

    def __init__(self, message: Any) -> None:
        self.message = message


def test_with_rocksdb_a_delete_leaves_its_partitions_database_whatever_event_faust_sees(
    tmp_path: Path,
) -> None:
    """A delivery callback runs in the context of whichever record started the flush's timer:
    faust's store reads a key in *that* record's partition, so a delete through faust of a row
    of another partition found nothing and left the row (an evicted call, a dropped metric row
    came back on the next read)."""
    table = create_worker_app(WorkerSettings(store="rocksdb://", data_dir=tmp_path)).tables[TABLE]
    store = TableStore.of(table.data)
    changelog = TopicPartition("worker-call-state-changelog", 1)
    store.put(1, b"call", b"completed")(changelog, 1)
    other = Record(SimpleNamespace(partition=2))  # a record of partition 2
    token = _current_event.set(weakref.ref(other))  # type: ignore[arg-type]  # what faust sets
    try:
        store.put(1, b"call", None)(changelog, 2)
    finally:
        _current_event.reset(token)
    assert store.get(1, b"call") is None
    assert dict(store.items()) == {}


def test_with_rocksdb_a_delivery_applies_its_writes_in_order(tmp_path: Path) -> None:
    """One delivery applies every write it covers as one RocksDB write batch, in order: a row
    written then deleted in the same flush is gone, one deleted then written again is kept."""
    faust_store = RocksDBStore(tmp_path)
    store = TableStore(faust_store, faust_store.databases_of)
    store.put(0, b"evicted", b"v1")
    store.put(0, b"back", None)
    store.put(0, b"evicted", None)
    store.put(0, b"back", b"v2")
    last = store.put(0, b"other", b"v3")
    last(CHANGELOG, 5)
    assert faust_store.databases[0].data == {b"back": b"v2", b"other": b"v3"}
    assert faust_store.log == [("offset", 5)]
