"""faust's own floor: a no-op agent over the same input topics, acking each record at once.

With BENCH_FLOOR_MODE=table-and-send, the least a stateful faust agent does instead: each
record written to a faust table (memory store: the row and its changelog record) and sent on to
an output topic (``topic.send``, not waiting for its delivery), the way faust's documentation
writes one; far less than the worker does per record (README, Performance).

Run by bench/processors.py as a subprocess (a faust app owns its process and event loop),
with BENCH_FLOOR_* in the environment; the worker is set up as `callstream worker` sets up its
own. Writes ``<events> <seconds>`` (first record to the last) to BENCH_FLOOR_OUT and exits once
it has seen BENCH_FLOOR_EVENTS records.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import faust

BOOTSTRAP = os.environ.get("BENCH_FLOOR_BOOTSTRAP", "127.0.0.1:9092")
TOPICS = os.environ.get("BENCH_FLOOR_TOPICS", "").split(",")
EVENTS = int(os.environ.get("BENCH_FLOOR_EVENTS", "0"))
OUT = os.environ.get("BENCH_FLOOR_OUT", "/dev/stdout")
DATA_DIR = os.environ.get("BENCH_FLOOR_DATA_DIR", ".cache/bench-floor-data")

app = faust.App(
    f"bench-floor-{os.getpid()}",
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    datadir=DATA_DIR,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    key_serializer="raw",
    value_serializer="raw",
)
source = app.topic(*TOPICS, key_type=bytes, value_type=bytes)
PARTITIONS = int(os.environ.get("BENCH_FLOOR_PARTITIONS", "1"))  # the input topics'


class Clock:
    """Started by the first record; the last writes ``<events> <seconds>`` and exits."""

    def __init__(self) -> None:
        self.seen, self.started = 0, 0.0

    def count(self) -> None:
        if not self.seen:
            self.started = time.perf_counter()
        self.seen += 1
        if self.seen == EVENTS:
            Path(OUT).write_text(f"{self.seen} {time.perf_counter() - self.started}\n")
            os._exit(0)


clock = Clock()


if os.environ.get("BENCH_FLOOR_MODE", "noop") == "table-and-send":
    sent_on = app.topic(
        os.environ.get("BENCH_FLOOR_OUT_TOPIC", "bench-floor-out"),
        key_type=bytes,
        value_type=bytes,
        partitions=PARTITIONS,
    )
    rows = app.Table("rows", key_type=bytes, value_type=bytes, partitions=PARTITIONS)

    @app.agent(source)
    async def table_and_send(stream: Any) -> None:
        await sent_on.declare()
        async for event in stream.noack().events():
            rows[event.key] = event.value
            await sent_on.send(key=event.key, value=event.value)
            event.ack()
            clock.count()

else:

    @app.agent(source)
    async def noop(stream: Any) -> None:
        async for event in stream.noack().events():
            event.ack()
            clock.count()


if __name__ == "__main__":
    worker = faust.Worker(app, loglevel="warn", quiet=True)
    worker.spinner = None  # as processors/runtime.py: the spinner turns on DEBUG logging
    worker.execute_from_commandline()
