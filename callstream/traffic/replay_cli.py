"""The ``callstream replay`` and ``callstream capture`` verbs (docs/traffic.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from callstream.cliargs import moment
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_names
from callstream.settings import env_bootstrap
from callstream.traffic.delivery import Delivery
from callstream.traffic.recording import deliveries
from callstream.traffic.target import TargetError, add_target_arguments, post_settings

if TYPE_CHECKING:
    from callstream.traffic.poster import PostSummary
    from callstream.traffic.progressbar import ProgressBar

NOTES_SHOWN = 50  # skipped lines and refusals named one by one; the rest only counted
EXIT_INTERRUPTED = 130


def _say(line: str) -> None:
    print(f"callstream: {line}", file=sys.stderr, flush=True)


class Notes:
    """Skipped lines, refusals and failures: named on stderr up to :data:`NOTES_SHOWN`, then
    only counted."""

    def __init__(self, bar: ProgressBar) -> None:
        self.bar = bar
        self.skipped = 0
        self.shown = 0

    def note(self, line: str) -> None:
        self.shown += 1
        if self.shown <= NOTES_SHOWN:
            self.bar.console.print(
                f"callstream: {line}", markup=False, highlight=False, soft_wrap=True
            )
        elif self.shown == NOTES_SHOWN + 1:
            self.bar.console.print("callstream: more skipped lines or refusals: counted only")

    def skip(self, number: int, reason: str) -> None:
        self.skipped += 1
        self.note(f"line {number} skipped: {reason}")

    def result(self, delivery: Delivery, status: int | None, body: bytes) -> None:
        if status is None or not 200 <= status < 300:
            text = body[:300].decode("utf-8", "replace")
            answer = f"no answer ({text})" if status is None else f"refused {status} {text}"
            self.note(f"call {delivery.call_id or '(unknown id)'}: {answer}")


def replay_code(summary: PostSummary, skipped: int) -> int:
    """0 when every line was posted and acked; 130 when interrupted; else 1."""
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 0 if summary.acked == summary.sent and skipped == 0 else 1


def cmd_replay(args: argparse.Namespace) -> int:
    from callstream.traffic.poster import post_deliveries
    from callstream.traffic.progressbar import ProgressBar

    try:
        settings = post_settings(args, os.environ)
    except TargetError as error:
        _say(f"error: {error}")
        return 2
    file: Path = args.file
    if not file.is_file():
        _say(f"error: {file} is not a file")
        return 2
    with file.open("rb") as lines, ProgressBar("replay") as bar:
        notes = Notes(bar)
        summary = asyncio.run(
            post_deliveries(
                deliveries(lines, notes.skip), settings, on_result=notes.result, progress=bar
            )
        )
    bar.finish(summary, {"skipped lines": notes.skipped})
    print(orjson.dumps({**summary.counts(), "skipped_lines": notes.skipped}).decode())
    return replay_code(summary, notes.skipped)


def cmd_capture(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from callstream.kafka.reading import ReadError
    from callstream.traffic.capture import capture
    from callstream.traffic.progressbar import ReadBar

    names = topic_names(os.environ.get("CALLSTREAM_TOPIC_PREFIX", "").strip())
    wanted = [name.strip() for name in args.topic.split(",") if name.strip()]
    if unknown := [name for name in wanted if name not in names]:
        _say(f"error: unknown topic {', '.join(unknown)}; topics: {', '.join(names)}")
        return 2
    bootstrap = env_bootstrap(os.environ)
    out: Path = args.out
    try:
        with out.open("wb") as sink, ReadBar("capture") as bar:
            written = asyncio.run(
                capture(
                    bootstrap,
                    [names[name] for name in wanted],
                    sink,
                    since_ms=args.since,
                    until_ms=args.until,
                    progress=bar,
                )
            )
    except (ReadError, KafkaError) as error:
        _say(f"error: {error}")
        return 1
    _say(f"capture: {written} records written to {out}")
    print(orjson.dumps({"records": written, "out": str(out)}).decode())
    return 0


def add_replay_cli(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``replay FILE [--url U] [--token T] [--speed X] [--concurrency N]``."""
    replay = verbs.add_parser(
        "replay", help="post recorded webhook bodies (JSON lines) with their relative timing"
    )
    replay.add_argument(
        "file", type=Path, metavar="FILE", help="JSON lines: webhook bodies or capture records"
    )
    add_target_arguments(replay)
    replay.set_defaults(func=cmd_replay)


def add_capture_cli(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``capture [--topic T[,T]] --out FILE [--since S] [--until U]``."""
    default_topics = f"{CALL_EVENTS},{CDRS}"
    cap = verbs.add_parser("capture", help="write topics' records as JSON lines replay posts")
    cap.add_argument(
        "--topic",
        default=default_topics,
        help=f"topics, comma-separated, named without CALLSTREAM_TOPIC_PREFIX "
        f"(default {default_topics})",
    )
    cap.add_argument("--out", type=Path, required=True, help="the JSON-lines file to write")
    when = "ISO 8601 (no zone: UTC) or epoch ms, of the records' timestamps"
    cap.add_argument("--since", type=moment("--since"), default=None, help=f"first moment, {when}")
    cap.add_argument(
        "--until",
        type=moment("--until"),
        default=None,
        help=f"end, excluded, {when} (default: the end offsets when the capture starts)",
    )
    cap.set_defaults(func=cmd_capture)
