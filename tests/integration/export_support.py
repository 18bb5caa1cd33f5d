"""``callstream export`` of a pipeline that ran simulated traffic, checked against the truth:
every call and window exported as the truth says, the range kept, and README's three
analysts' queries answering over the export what tests/analyst_truth.py computes."""

from __future__ import annotations

import asyncio
import math
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import msgspec

from callstream.schemas.calls import CompletedCall
from tests.analyst_truth import (
    CENTRE,
    answer_rate_per_hotline_per_day,
    busiest_hours,
    handle_time_per_agent,
)
from tests.integration.cli_helpers import callstream
from tests.integration.simulated_support import Pipeline, Simulated
from tests.metrics_truth import window_mismatches
from tests.simulated_truth import completed_mismatches

README = Path(__file__).resolve().parents[2] / "README.md"
TIMESTAMPS = {  # the columns the export adds to the records' fields
    "calls": "started_at, answered_at, ended_at",
    "metric_windows": "window_start, window_end, updated_at",
}


def readme_queries() -> list[str]:
    """The SQL blocks of README's "SQL for analysts", in order."""
    section = README.read_text("utf-8").split("\n## SQL for analysts\n", 1)[1].split("\n## ", 1)
    return re.findall(r"```sql\n(.*?)```", section[0], re.DOTALL)


def _export(pipeline: Pipeline, *arguments: str) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": pipeline.bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": pipeline.prefix,
    }
    run = callstream("export", *arguments, env=env)
    assert run.code == 0, run.stderr
    assert "Traceback" not in run.stderr


def _table(connection: duckdb.DuckDBPyConnection, source: str, table: str) -> list[dict[str, Any]]:
    """The rows of ``source`` as the topic's records: the schema's fields, no timestamps."""
    cursor = connection.execute(f"SELECT * EXCLUDE ({TIMESTAMPS[table]}) FROM {source}")  # noqa: S608
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _windows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        f"{row['dimension']}:{row['value']}:{row['window']}:{row['window_start_ms']}": row
        for row in rows
    }


def _calls(rows: list[dict[str, Any]]) -> dict[str, CompletedCall]:
    calls = [msgspec.convert(row, CompletedCall) for row in rows]
    return {call.call_id: call for call in calls}


def _close(got: float, want: float, places: int) -> bool:
    """``got`` is ``want`` rounded to ``places`` decimals (either way at a half)."""
    return math.isclose(got, want, abs_tol=0.5 * 10**-places + 1e-9)


def check_queries(connection: duckdb.DuckDBPyConnection, truth: list[dict[str, Any]]) -> None:
    answer_rate, handle_time, busiest = (
        connection.execute(query).fetchall() for query in readme_queries()
    )
    want_rates = answer_rate_per_hotline_per_day(truth)
    assert [(hotline, day) for hotline, day, *_ in answer_rate] == sorted(want_rates)
    for hotline, day, offered, answered, rate in answer_rate:
        assert (offered, answered) == want_rates[hotline, day]
        assert _close(rate, answered / offered, 3)
    want_times = handle_time_per_agent(truth)
    assert sorted(row[0] for row in handle_time) == sorted(want_times)
    for agent, name, answered, mean, median, hours in handle_time:
        want_name, want_answered, want_mean, want_median, want_hours = want_times[agent]
        assert (name, answered) == (want_name, want_answered)
        assert _close(mean, want_mean, 1)
        assert _close(median, want_median, 1)
        assert _close(hours, want_hours, 2)
    assert [row[:4] for row in busiest] == busiest_hours(truth)
    for _hour, _days, offered, answered, rate in busiest:
        assert _close(rate, answered / offered, 3)


async def check_export_against_truth(
    pipeline: Pipeline, simulated: Simulated, first_start_ms: int, tmp: Path
) -> None:
    """Export the whole traffic to DuckDB (from the local midnight before its first call, so
    that its day and hour windows are in) and a slice of it to Parquet, and check both."""
    midnight = datetime.fromtimestamp(first_start_ms / 1000, CENTRE).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    since_ms = int(midnight.timestamp() * 1000)
    database = tmp / "export.duckdb"
    await asyncio.to_thread(
        _export, pipeline, "--since", midnight.isoformat(), "--to", "duckdb", str(database)
    )
    with duckdb.connect(str(database), read_only=True) as connection:
        calls = _calls(_table(connection, "calls", "calls"))
        assert completed_mismatches(simulated.completed, calls) is None
        windows = _windows(_table(connection, "metric_windows", "metric_windows"))
        assert window_mismatches(simulated.windows, windows) is None
        assert min(row["window_start_ms"] for row in windows.values()) >= since_ms
        check_queries(connection, simulated.truth)

    since, until = first_start_ms + 20_000, first_start_ms + 80_000  # holds a minute's start
    out = tmp / "export-slice"
    await asyncio.to_thread(
        _export, pipeline, "--since", str(since), "--until", str(until), "--out", str(out)
    )
    with duckdb.connect() as connection:
        calls = _calls(_table(connection, f"read_parquet('{out / 'calls.parquet'}')", "calls"))
        windows = _windows(
            _table(
                connection, f"read_parquet('{out / 'metric_windows.parquet'}')", "metric_windows"
            )
        )
    started = {
        call_id: call
        for call_id, call in simulated.completed.items()
        if since <= (call.started_at_ms or -1) < until
    }
    assert 0 < len(started) < len(simulated.completed)
    assert completed_mismatches(started, calls) is None
    opened = {
        key: figures
        for key, figures in simulated.windows.items()
        if since <= int(key.rsplit(":", 1)[1]) < until
    }
    assert opened
    assert window_mismatches(opened, windows) is None
