"""Run `callstream worker` as a user would (a subprocess) and read what it published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec
import orjson

from callstream.health import wait_http_ok
from callstream.kafka.broker import free_port
from callstream.schemas.calls import CallState
from tests.integration.ingress_support import sample

STATES = ("ringing", "answered", "hangup")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    web_port: int

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def worker_process(
    bootstrap: str,
    prefix: str,
    tmp: Path,
    *,
    app_id: str | None = None,
    name: str = "worker",
    extra_env: dict[str, str] | None = None,
) -> Iterator[Worker]:
    """A worker with a memory store (the table lives only in its changelog), ready to process."""
    port = free_port()
    env = {
        **(extra_env or {}),
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
        "CALLSTREAM_DATA_DIR": str(tmp / f"{name}-data"),
        "CALLSTREAM_STORE": "memory",
        "CALLSTREAM_APP_ID": app_id or f"{prefix}worker",
        "CALLSTREAM_TIMER_INTERVAL_S": "1",
    }
    log = tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "callstream", "worker", "--web-port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, log, port)
    try:
        if not wait_http_ok(f"http://127.0.0.1:{port}/healthz", 120):
            raise AssertionError(f"worker not ready:\n{log.read_text()[-3000:]}")
        yield worker
    finally:
        worker.stop()


def call_events(call_id: str, start_ms: int = 1_700_000_000_000) -> list[bytes]:
    """One answered call: ringing, answered, hangup (live) and its CDR, as the provider sends."""
    live = orjson.loads(sample("event-ringing.json"))
    events = []
    for offset_s, state in zip((0, 4, 10), STATES, strict=True):
        body = {
            **live,
            "call_uuid": call_id,
            "state": state,
            "date_time": start_ms + offset_s * 1000,
        }
        events.append(orjson.dumps(body))
    cdr = {**orjson.loads(sample("cdr.json")), "transaction_id": call_id}
    return [*events, orjson.dumps(cdr)]


def latest_states(records: list[object]) -> dict[str, CallState]:
    """The last call-state of each call (what compaction keeps)."""
    states: dict[str, CallState] = {}
    for record in records:
        value = getattr(record, "value", None)
        if value is not None:
            state = msgspec.json.decode(value, type=CallState)
            states[state.call_id] = state
    return states
