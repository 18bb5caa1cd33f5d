"""All of a worker's RocksDB stores share one memory budget (processors/store_memory.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from callstream.processors.app import TABLE, WINDOWS_TABLE, create_worker_app
from callstream.processors.private_api import partition_databases
from callstream.processors.settings import WorkerSettings
from callstream.processors.store_memory import MEMTABLE_BYTES, BudgetedOptions, StoreMemory

MB = 1024 * 1024


def budgeted_databases(tmp_path: Path, per_table: int) -> tuple[StoreMemory, list[object]]:
    app = create_worker_app(WorkerSettings(store="rocksdb://", data_dir=tmp_path))
    stores = [app.tables[name].data for name in (TABLE, WINDOWS_TABLE)]
    options = [store.rocksdb_options for store in stores]
    assert all(isinstance(option, BudgetedOptions) for option in options)
    memory = options[0].memory
    assert all(option.memory is memory for option in options), "one budget for every store"
    databases = [partition_databases(store) for store in stores]
    return memory, [open_one(p) for open_one in databases if open_one for p in range(per_table)]


def wait_for_memtables_within(memory: StoreMemory, limit: int, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while (held := memory.usage()["memtables"]) > limit:
        if time.monotonic() > deadline:
            raise AssertionError(f"memtables hold {held} bytes after {deadline_s} s, over {limit}")
        time.sleep(0.05)


def test_the_stores_memtables_are_flushed_within_the_shared_budget(tmp_path: Path) -> None:
    """Eight partition databases, 6 MB each: each under its own 8 MB write buffer, so only the
    shared budget (32 MB of memtables) makes RocksDB flush, and it does."""
    memory, databases = budgeted_databases(tmp_path, per_table=4)
    assert len(databases) == 8
    value = os.urandom(1500)
    for index, database in enumerate(databases):
        for row in range(6 * MB // len(value)):
            database.put(f"{index}:{row}".encode(), value)  # type: ignore[attr-defined]
    wait_for_memtables_within(memory, MEMTABLE_BYTES)
    flushed = [
        database.property_int_value("rocksdb.num-files-at-level0")  # type: ignore[attr-defined]
        for database in databases
    ]
    assert sum(flushed) > 0, "nothing was flushed: the budget did not apply"
    usage = memory.usage()
    assert set(usage) == {"memtables", "block_cache"}
    assert 0 < usage["memtables"] <= MEMTABLE_BYTES
    assert usage["memtables"] + usage["block_cache"] <= memory.limit_bytes + MB


def test_the_memory_store_has_no_budget(tmp_path: Path) -> None:
    app = create_worker_app(WorkerSettings(store="memory://", data_dir=tmp_path))
    assert not hasattr(app.tables[TABLE].data, "rocksdb_options")
