"""``callstream export`` without a broker: what it keeps of each topic, the tables' columns, the
files and the database DuckDB writes, and its usage errors."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import msgspec
import pytest

from callstream.cli import main
from callstream.export.columns import CALLS, METRIC_WINDOWS, columns_of
from callstream.export.latest import in_range, latest_calls, latest_windows
from callstream.export.write import Contents, load, write_database, write_files
from callstream.kafka.broker import free_port
from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import WindowMetrics
from tests.integration.cli_helpers import callstream

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"
T0 = 1_796_570_000_000


def call(call_id: str, revision: int = 1, start: int | None = T0, **fields: Any) -> CompletedCall:
    return CompletedCall(
        call_id=call_id,
        revision=revision,
        source="both",
        outcome="answered",
        started_at_ms=start,
        **fields,
    )


def window(start: int = T0, revision: int = 1, offered: int = 1, **fields: Any) -> WindowMetrics:
    return WindowMetrics(
        **{"dimension": "hotline", "value": "19001234", **fields},
        window="1h",
        window_start_ms=start,
        window_end_ms=start + 3_600_000,
        revision=revision,
        offered=offered,
        updated_at_ms=start + 1,
    )


def encoded(*records: msgspec.Struct) -> list[bytes]:
    return [msgspec.json.encode(record) for record in records]


def test_the_range_takes_its_start_and_not_its_end() -> None:
    assert in_range(10, 10, 20)
    assert not in_range(20, 10, 20)
    assert not in_range(9, 10, None)
    assert in_range(10**15, 10, None)
    assert not in_range(None, 0, None)


def test_each_call_is_its_highest_revision_whatever_the_order_and_repeats() -> None:
    latest = latest_calls(T0, None)
    for value in encoded(
        call("a", 2, talk_seconds=2.0),
        call("a", 1, talk_seconds=1.0),  # replayed after a restart: older, read later
        call("b", 1),
        call("a", 3, talk_seconds=3.0),
        call("a", 2, talk_seconds=2.0),
        call("b", 1),
    ):
        latest.add(value)
    kept = {record.call_id: record for record in latest.records()}
    assert (kept["a"].revision, kept["a"].talk_seconds) == (3, 3.0)
    assert kept["b"].revision == 1
    assert latest.skipped == 0


def test_a_call_is_in_the_range_of_its_highest_revision() -> None:
    latest = latest_calls(T0, T0 + 1000)
    for value in encoded(
        call("moved-out", 1, start=T0), call("moved-out", 2, start=T0 + 1000),
        call("moved-in", 1, start=T0 - 1), call("moved-in", 2, start=T0 + 999),
        call("late-old", 2, start=T0 - 5), call("late-old", 1, start=T0),
        call("no-start", 1, start=None),
    ):  # fmt: skip
        latest.add(value)
    assert [record.call_id for record in latest.records()] == ["moved-in"]


def test_tombstones_and_other_records_are_counted_not_kept() -> None:
    latest = latest_calls(0, None)
    for value in [None, b"not json", b'{"call_id": "x"}', *encoded(window())]:
        latest.add(value)
    assert latest.records() == []
    assert latest.skipped == 4


def test_each_window_is_its_last_value_and_in_range_by_its_start() -> None:
    latest = latest_windows(T0, T0 + 3_600_000)
    for value in encoded(
        window(T0, 1, offered=1),
        window(T0, 3, offered=3),
        window(T0, 2, offered=2),  # replayed
        window(T0 + 3_600_000, 1),  # the next hour: out of range
        window(T0 - 3_600_000, 9),
        window(T0, 1, offered=5, dimension="agent", value="100"),
    ):
        latest.add(value)
    kept = sorted((w.dimension, w.offered) for w in latest.records())
    assert kept == [("agent", 5), ("hotline", 3)]


@pytest.mark.parametrize(
    ("table", "schema"),
    [(CALLS, "callstream.calls-completed"), (METRIC_WINDOWS, "callstream.metrics")],
)
def test_columns_are_the_published_fields_and_a_timestamp_beside_each_epoch_ms(
    table: Any, schema: str
) -> None:
    document = json.loads((SCHEMAS / f"{schema}.schema.json").read_text("utf-8"))
    (definition,) = document["$defs"].values()
    published = set(definition["properties"])
    names = [column.name for column in table.columns]
    assert len(names) == len(set(names))
    millis = {name for name in published if name.endswith("_ms")}
    assert millis
    assert set(names) == published | {name.removesuffix("_ms") for name in millis}
    types = {column.name: column.sql_type for column in table.columns}
    for name in millis:
        assert (types[name], types[name.removesuffix("_ms")]) == ("BIGINT", "TIMESTAMPTZ")
        assert names.index(name.removesuffix("_ms")) == names.index(name) - 1


def test_a_field_sql_cannot_hold_is_refused() -> None:
    class Nested(msgspec.Struct):
        items: list[int]

    with pytest.raises(TypeError, match=r"Nested\.items"):
        columns_of(Nested)


def _described(connection: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    return {row[0]: row[1] for row in connection.execute(f"DESCRIBE {table}").fetchall()}


def test_the_tables_are_typed_and_hold_the_records() -> None:
    records = [
        call("b", 2, start=T0 + 5, ring_seconds_estimated=True, price=55.002, hotline="0868"),
        call("a", 1, start=T0, answered_at_ms=T0 + 1500, talk_seconds=95.0, hotline=None),
    ]
    with duckdb.connect() as connection:
        load(connection, [(CALLS, records), (METRIC_WINDOWS, [])])
        types = _described(connection, "calls")
        assert (types["started_at"], types["started_at_ms"]) == (
            "TIMESTAMP WITH TIME ZONE",
            "BIGINT",
        )
        assert (types["cdr_missing"], types["price"], types["revision"]) == (
            "BOOLEAN",
            "DOUBLE",
            "INTEGER",
        )
        rows = connection.execute(
            "SELECT call_id, epoch_ms(started_at), answered_at_ms, hotline, price, "
            "ring_seconds_estimated, cdr_missing, talk_seconds FROM calls"
        ).fetchall()
        assert rows == [  # in order of start
            ("a", T0, T0 + 1500, None, None, False, False, 95.0),
            ("b", T0 + 5, None, "0868", 55.002, True, False, None),
        ]
        assert connection.execute(
            "SELECT count(*) FROM metric_windows WHERE \"window\" = '1h'"
        ).fetchone() == (0,)


@pytest.mark.parametrize("file_format", ["parquet", "csv"])
def test_files_read_back_as_the_tables(tmp_path: Path, file_format: str) -> None:
    contents: Contents = [(CALLS, [call("a", hotline="0868694566")]), (METRIC_WINDOWS, [window()])]
    written = write_files(tmp_path, file_format, contents, "Asia/Ho_Chi_Minh")
    assert written == [
        tmp_path / f"calls.{file_format}",
        tmp_path / f"metric_windows.{file_format}",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(p.name for p in written)
    with duckdb.connect() as connection:
        load(connection, contents)
        for path, table in zip(written, ("calls", "metric_windows"), strict=True):
            types = _described(connection, table)
            if file_format == "parquet":
                source = f"read_parquet('{path}')"
            else:
                columns = ", ".join(f"'{name}': '{kind}'" for name, kind in types.items())
                source = f"read_csv('{path}', header = true, columns = {{{columns}}})"
            both_ways = (  # the test's own names and paths
                f"SELECT count(*) FROM ((SELECT * FROM {table} EXCEPT SELECT * FROM {source}) "  # noqa: S608
                f"UNION ALL (SELECT * FROM {source} EXCEPT SELECT * FROM {table}))"
            )
            differ = connection.execute(both_ways).fetchone()
            assert differ == (0,), path
    if file_format == "csv":
        header, row = (tmp_path / "calls.csv").read_text("utf-8").splitlines()
        assert header.split(",")[:3] == ["call_id", "revision", "source"]
        local = datetime.fromtimestamp(T0 / 1000, ZoneInfo("Asia/Ho_Chi_Minh"))
        assert f",{local:%Y-%m-%d %H:%M:%S}+07,{T0}," in row  # the centre's clock and offset


def test_the_database_keeps_other_tables_and_replaces_its_own(tmp_path: Path) -> None:
    path = tmp_path / "calls.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE notes AS SELECT 'mine' AS note")
    write_database(path, [(CALLS, [call("a"), call("b")]), (METRIC_WINDOWS, [window()])])
    write_database(path, [(CALLS, [call("c")]), (METRIC_WINDOWS, [])])
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT call_id FROM calls").fetchall() == [("c",)]
        assert connection.execute("SELECT count(*) FROM metric_windows").fetchone() == (0,)
        assert connection.execute("SELECT note FROM notes").fetchall() == [("mine",)]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--out", "d"], "the following arguments are required: --since"),
        (["--since", "yesterday", "--out", "d"], "neither epoch milliseconds nor an ISO 8601"),
        (["--since", "2026-01-02", "--until", "2026-01-01", "--out", "d"], "--until must be later"),
        (["--since", "2026-01-01"], "one of the arguments --out --to is required"),
        (["--since", "2026-01-01", "--out", "d", "--to", "duckdb", "f"], "not allowed with"),
        (["--since", "2026-01-01", "--to", "sqlite", "f"], "the database it writes is duckdb"),
        (["--since", "2026-01-01", "--to", "duckdb"], "expected 2 arguments"),
        (["--since", "2026-01-01", "--to", "duckdb", "f", "--format", "csv"], "goes with --out"),
        (["--since", "2026-01-01", "--out", "d", "--format", "xlsx"], "invalid choice: 'xlsx'"),
        (["--since", "2026-01-01", "--out", "file"], "--out file: not a directory"),
        (["--since", "2026-01-01", "--to", "duckdb", "file"], "not a valid DuckDB database"),
        (["--since", "2026-01-01", "--to", "duckdb", "d"], "a directory, not a database file"),
        (["--since", "2026-01-01", "--to", "duckdb", "none/x.db"], "no directory none"),
    ],
)
def test_bad_arguments_are_a_usage_error_naming_the_problem(
    arguments: list[str],
    said: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "file").write_text("not a database")
    with pytest.raises(SystemExit) as exited:
        main(["export", *arguments])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d", "file"]  # nothing written


def test_no_broker_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    done = callstream(
        "export",
        "--since",
        "0",
        "--out",
        str(tmp_path),
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"},
        timeout=60,
    )
    assert done.code == 1
    assert "callstream: error: KafkaConnectionError" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Unclosed" not in done.stderr
    assert list(tmp_path.iterdir()) == []
