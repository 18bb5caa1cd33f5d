"""The tables into DuckDB, and from there into Parquet or CSV files (DuckDB writes both itself,
so one dependency serves the three outputs). Rows go in as one list per column through
``unnest``: a whole table in one statement, typed by the table's columns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from callstream.export.columns import Table

FORMATS = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER)"}

Contents = Sequence[tuple[Table[Any], Sequence[Any]]]


def quoted(name: str) -> str:
    """An SQL identifier (``window`` is a keyword)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal (COPY takes no parameter for its file)."""
    return "'" + text.replace("'", "''") + "'"


def create_sql(table: Table[Any]) -> str:
    columns = ", ".join(f"{quoted(column.name)} {column.sql_type}" for column in table.columns)
    return f"CREATE OR REPLACE TABLE {quoted(table.name)} ({columns})"


def insert_sql(table: Table[Any]) -> str:
    """An INSERT whose parameters are :meth:`Table.rows`' lists, one per value column."""
    parameter = {column.field: n for n, column in enumerate(table.value_columns(), start=1)}
    values = [
        f"make_timestamptz(unnest(${parameter[column.field]}::BIGINT[]) * 1000)"
        if column.timestamp
        else f"unnest(${parameter[column.field]}::{column.sql_type}[])"
        for column in table.columns
    ]
    return f"INSERT INTO {quoted(table.name)} SELECT {', '.join(values)}"


def load(connection: duckdb.DuckDBPyConnection, contents: Contents) -> None:
    """Create (or replace) each table and fill it with its records."""
    for table, records in contents:
        connection.execute(create_sql(table))
        connection.execute(insert_sql(table), table.rows(records))


def write_files(out_dir: Path, file_format: str, contents: Contents, zone: str) -> list[Path]:
    """``<table>.<format>`` in ``out_dir`` for each table, each written beside its place and
    then renamed onto it; CSV timestamps in ``zone``'s clock, with their offset."""
    written = []
    with duckdb.connect() as connection:
        connection.execute(f"SET TimeZone = {literal(zone)}")
        load(connection, contents)
        for table, _records in contents:
            target = out_dir / f"{table.name}.{file_format}"
            part = target.with_name(f".{target.name}.part")
            connection.execute(
                f"COPY {quoted(table.name)} TO {literal(str(part))} {FORMATS[file_format]}"
            )
            part.replace(target)
            written.append(target)
    return written


def write_database(path: Path, contents: Contents) -> None:
    """The tables into the DuckDB database ``path`` (made if missing; its other tables are
    left as they are), all of them or, on an error, none."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("BEGIN TRANSACTION")
        load(connection, contents)
        connection.execute("COMMIT")
