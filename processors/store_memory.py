"""One memory budget for all of a worker's RocksDB stores, whatever partitions it holds.

faust opens a RocksDB database per table partition, each with its own block cache and
memtables: bounded per partition, a worker's memory grew with the partitions it was assigned
and took about 20 minutes of a soak to reach its bound (docs/reliability.md, Soak). Here every
database shares one block cache, and their memtables are charged to it through one write
buffer manager (RocksDB's way to cap memtables and cache under a single limit), so that the
stores together stay near ``total_bytes`` (the limit is soft: pinned blocks may pass it) and
reach it within minutes of a start. Outside it: RocksDB's table readers and compaction buffers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import faust.stores.rocksdb
import rocksdict

from callstream.processors.private_api import use_rocksdb_options

# The whole worker's RocksDB memory: block cache and memtables, the memtables at most half.
STORE_MEMORY_BYTES = 64 * 1024 * 1024
MEMTABLE_BYTES = STORE_MEMORY_BYTES // 2


class StoreMemory:
    """The block cache and the write buffer manager every store of a worker shares."""

    def __init__(self, total_bytes: int = STORE_MEMORY_BYTES, memtables: int = MEMTABLE_BYTES):
        self.limit_bytes = total_bytes
        self.cache = rocksdict.Cache(total_bytes)
        # Not stalling writers: over the limit, a write flushes its own database's memtable.
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            memtables, False, self.cache
        )

    @classmethod
    def shared_by(cls, stores: Iterable[Any]) -> StoreMemory:
        """A budget, and ``stores`` (faust RocksDB stores, none open yet) in it."""
        memory = cls()
        for store in stores:
            memory.share_with(store)
        return memory

    def usage(self) -> dict[str, int]:
        """Bytes held now: ``total``, the cache's use (data, index and filter blocks, and the
        space reserved for the memtables, in 256 KB steps, given back only once they shrink well
        below it), and ``memtables``, what the memtables hold of it."""
        total: int = self.cache.get_usage()
        memtables: int = self.write_buffers.get_usage()
        return {"total": total, "memtables": memtables}

    def share_with(self, store: Any) -> None:
        """Open ``store``'s databases (a faust RocksDB store, before any is open) in this
        budget, with the options faust would have given them otherwise."""
        options = store.rocksdb_options
        use_rocksdb_options(store, BudgetedOptions(self, **vars(options)))


class BudgetedOptions(faust.stores.rocksdb.RocksDBOptions):
    """faust's options for a database, with the shared cache and write buffer manager in
    place of a cache of its own."""

    def __init__(self, memory: StoreMemory, **settings: Any) -> None:
        extra = settings.pop("extra_options", {})
        super().__init__(**settings, **extra)
        self.memory = memory

    def as_options(self) -> rocksdict.Options:
        options: rocksdict.Options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        table.set_block_cache(self.memory.cache)
        # Index and filter blocks in the cache too, else they grow with the files, outside it;
        # the newest files' pinned there, as RocksDB advises, so a read rarely loads them.
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.memory.write_buffers)
        return options
