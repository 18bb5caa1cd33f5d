"""The private faust names the worker uses are all in processors/private_api.py, checked at
start-up: the installed faust has them, and a missing one stops the worker before it starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import faust.stores.rocksdb
import pytest

from callstream.processors.app import TABLE, create_worker_app
from callstream.processors.private_api import (
    PrivateApiMissing,
    check_private_api,
    partition_databases,
)
from callstream.processors.settings import WorkerSettings

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_faust_has_every_private_name_the_worker_uses() -> None:
    check_private_api()


def test_a_missing_name_fails_loudly_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(faust.stores.rocksdb.Store, "_db_for_partition")
    with pytest.raises(PrivateApiMissing, match=r"rocksdb\.Store\._db_for_partition"):
        check_private_api()


def test_the_worker_refuses_to_start_without_one(tmp_path: Path) -> None:
    """Before it touches Kafka (nothing listens on the broker's port): exit 1, one line."""
    script = (
        "import sys, faust.tables.recovery as recovery\n"
        "del recovery.Recovery.__annotations__['completed']\n"
        "from callstream.cli import main\n"
        "sys.exit(main(['worker']))\n"
    )
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "CALLSTREAM_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Recovery.completed" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_rocksdb_store_is_read_through_its_partition_databases(tmp_path: Path) -> None:
    """No silent fallback to faust's slower path: a RocksDB table gives its databases, only a
    memory table none."""
    for store, has_databases in (("rocksdb://", True), ("memory://", False)):
        settings = WorkerSettings(store=store, data_dir=tmp_path / store[:-3])
        table = create_worker_app(settings).tables[TABLE]
        assert (partition_databases(table.data) is not None) is has_databases, store
