"""All of a worker's RocksDB stores share one memory budget (processors/store_memory.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from callstream.processors.app import TABLE, WINDOWS_TABLE, create_worker_app
from callstream.processors.private_api import partition_databases
from callstream.processors.settings import WorkerSettings
from callstream.processors.store_memory import MEMTABLE_BYTES, BudgetedOptions, StoreMemory

MB = 1024 * 1024


def budgeted_databases(tmp_path: Path, per_table: int) -> tuple[StoreMemory, list[Any]]:
    app = create_worker_app(WorkerSettings(store="rocksdb://", data_dir=tmp_path))
    stores = [app.tables[name].data for name in (TABLE, WINDOWS_TABLE)]
    options = [store.rocksdb_options for store in stores]
    assert all(isinstance(option, BudgetedOptions) for option in options)
    memory = options[0].memory
    assert all(option.memory is memory for option in options), "one budget for every store"
    databases = [partition_databases(store) for store in stores]
    return memory, [open_one(p) for open_one in databases if open_one for p in range(per_table)]


def wait_for_flushes(databases: list[Any], deadline_s: float = 60) -> None:
    """Until no database has a flush pending or running; raises at the deadline."""
    deadline = time.monotonic() + deadline_s
    busy = ("rocksdb.mem-table-flush-pending", "rocksdb.num-running-flushes")
    while pending := sum(db.property_int_value(name) for db in databases for name in busy):
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending} flushes pending or running after {deadline_s} s")
        time.sleep(0.05)


def test_the_stores_memtables_are_flushed_within_the_shared_budget(tmp_path: Path) -> None:
    """Eight partition databases, 6 MB each: each under its own 8 MB write buffer, so only the
    shared budget (32 MB of memtables) makes RocksDB flush. The budget is soft (a write over it
    flushes a memtable of the database written), so the memtables end above it by at
    most about one write buffer, and far below the 48 MB written."""
    memory, databases = budgeted_databases(tmp_path, per_table=4)
    assert len(databases) == 8
    value = os.urandom(1500)
    written = 0
    for index, database in enumerate(databases):
        for row in range(6 * MB // len(value)):
            database.put(f"{index}:{row}".encode(), value)
            written += len(value)
    wait_for_flushes(databases)
    # Flushed to files (at any level: a compaction may have moved them on meanwhile).
    flushed = sum(db.property_int_value("rocksdb.live-sst-files-size") for db in databases)
    assert flushed > 0, "nothing was flushed: the budget did not apply"
    usage = memory.usage()
    assert set(usage) == {"total", "memtables"}
    assert 0 < usage["memtables"] <= MEMTABLE_BYTES + 8 * MB < written
    # The memtables are charged to the one cache: its use holds them.
    assert usage["total"] >= usage["memtables"]


def test_the_memory_store_has_no_budget(tmp_path: Path) -> None:
    app = create_worker_app(WorkerSettings(store="memory://", data_dir=tmp_path))
    assert not hasattr(app.tables[TABLE].data, "rocksdb_options")
