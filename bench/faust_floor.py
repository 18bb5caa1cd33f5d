"""faust's own floor: a no-op agent over the same input topics, acking each record at once.

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


def report(events: int, seconds: float) -> None:
    Path(OUT).write_text(f"{events} {seconds}\n")
    os._exit(0)


@app.agent(source)
async def noop(stream: Any) -> None:
    seen, started = 0, 0.0
    async for event in stream.noack().events():
        event.ack()
        if not seen:
            started = time.perf_counter()
        seen += 1
        if seen == EVENTS:
            report(seen, time.perf_counter() - started)


if __name__ == "__main__":
    worker = faust.Worker(app, loglevel="warn", quiet=True)
    worker.spinner = None  # as processors/runtime.py: the spinner turns on DEBUG logging
    worker.execute_from_commandline()
