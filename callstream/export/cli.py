"""``callstream export --since S [--until U] (--out DIR [--format parquet|csv] | --to duckdb
FILE)`` (README, SQL for analysts)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from callstream.cliargs import moment
from callstream.export.columns import CALLS, METRIC_WINDOWS
from callstream.schemas.topics import topic_names
from callstream.settings import env_bootstrap

if TYPE_CHECKING:
    from callstream.export.write import Contents


def _say(line: str) -> None:
    print(f"callstream: {line}", file=sys.stderr, flush=True)


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments that argparse cannot see; None when nothing is."""
    if args.until is not None and args.until <= args.since:
        return "--until must be later than --since"
    if args.to is not None:
        return _database_problem(args.to, args.format)
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out}: not a directory"
    return None


def _database_problem(to: list[str], file_format: str | None) -> str | None:
    kind, file = to
    path = Path(file)
    if kind != "duckdb":
        return f"--to {kind}: the database it writes is duckdb (--to duckdb FILE)"
    if file_format is not None:
        return "--format goes with --out; --to duckdb FILE writes a database"
    if path.is_dir():
        return f"--to duckdb {file}: a directory, not a database file"
    if not path.parent.is_dir():
        return f"--to duckdb {file}: no directory {path.parent}"
    return None


def _openable(path: Path) -> str | None:
    """Why the DuckDB database at ``path`` cannot be written (not one, locked); None if it
    can, or is not there yet. Checked before the read, which may take a while."""
    import duckdb

    if not path.exists():
        return None
    try:
        duckdb.connect(str(path)).close()
    except duckdb.Error as error:
        return f"--to duckdb {path}: {error}"
    return None


def cmd_export(args: argparse.Namespace) -> int:
    import duckdb
    from aiokafka.errors import KafkaError

    from callstream.export.source import read_export
    from callstream.export.write import write_database, write_files
    from callstream.kafka.reading import ReadError
    from callstream.processors.settings import metric_settings
    from callstream.traffic.progressbar import ReadBar

    parser: argparse.ArgumentParser = args.export_parser
    if problem := _usage_problem(args):
        parser.error(problem)
    database = Path(args.to[1]) if args.to is not None else None
    if database is not None and (problem := _openable(database)):
        parser.error(problem)
    names = topic_names(os.environ.get("CALLSTREAM_TOPIC_PREFIX", "").strip())
    bootstrap = env_bootstrap(os.environ)
    file_format = args.format or "parquet"
    zone = metric_settings(os.environ).zone  # CSV timestamps in the call centre's clock
    try:
        if database is None:
            args.out.mkdir(parents=True, exist_ok=True)
        with ReadBar("export") as bar:
            exported = asyncio.run(
                read_export(bootstrap, names, args.since, args.until, progress=bar)
            )
        contents: Contents = [(CALLS, exported.calls), (METRIC_WINDOWS, exported.windows)]
        if database is None:
            written = [str(path) for path in write_files(args.out, file_format, contents, zone)]
        else:
            write_database(database, contents)
            written = [str(database)]
    except (ReadError, KafkaError, duckdb.Error, OSError) as error:
        _say(f"error: {error}")
        return 1
    _say(
        f"export: {len(exported.calls)} calls and {len(exported.windows)} metric windows "
        f"(from {exported.read} records, {exported.skipped} skipped) written to "
        f"{', '.join(written)}"
    )
    summary = {
        "calls": len(exported.calls),
        "metric_windows": len(exported.windows),
        "records_read": exported.read,
        "skipped": exported.skipped,
        "written": written,
    }
    print(orjson.dumps(summary).decode())
    return 0


def add_export_cli(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``export --since S [--until U] (--out DIR [--format parquet|csv] | --to duckdb FILE)``."""
    export = verbs.add_parser(
        "export",
        help="completed calls (highest revision) and metric windows (last value) for analysts",
        description="Read callstream.calls-completed and callstream.metrics from Kafka "
        "(KAFKA_BOOTSTRAP_SERVERS, CALLSTREAM_TOPIC_PREFIX) and write the tables calls and "
        "metric_windows: the calls that started, and the windows that start, in the range.",
    )
    when = "ISO 8601 (no zone: UTC; e.g. 2026-05-04T00:00+07:00) or epoch ms"
    export.add_argument(
        "--since",
        type=moment("--since"),
        required=True,
        help=f"the first start to export, {when}",
    )
    export.add_argument(
        "--until",
        type=moment("--until"),
        default=None,
        help=f"the end of the starts, excluded, {when} (default: no end)",
    )
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write calls.<format> and metric_windows.<format> into DIR (made if missing; "
        "files of those names replaced)",
    )
    target.add_argument(
        "--to",
        nargs=2,
        metavar=("duckdb", "FILE"),
        help="write the tables calls and metric_windows into the DuckDB database FILE (made "
        "if missing; those two tables replaced, any other kept)",
    )
    export.add_argument(
        "--format",
        choices=["parquet", "csv"],
        default=None,
        help="the files' format with --out (default parquet)",
    )
    export.set_defaults(func=cmd_export, export_parser=export)
