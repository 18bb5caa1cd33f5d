"""Run `callstream worker` as a user would (a subprocess) and read what it published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import orjson
from aiokafka.structs import ConsumerRecord

from callstream.health import wait_http_ok
from callstream.kafka.broker import free_port
from callstream.schemas.calls import CallState
from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED
from tests.callstate_truth import (
    completed_mismatches,
    describe,
    highest_revisions,
    latest_states,
    state_mismatches,
)
from tests.integration.ingress_support import Ingress, sample
from tests.kafka_support import read_until

STATES = ("ringing", "answered", "hangup")
JSON = {"Content-Type": "application/json"}


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path
    web_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

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


def start_worker(
    bootstrap: str,
    prefix: str,
    tmp: Path,
    *,
    app_id: str | None = None,
    name: str = "worker",
    extra_env: dict[str, str] | None = None,
    store: str = "memory",
    data_dir: Path | None = None,
) -> Worker:
    """A worker process, started and not yet ready (:func:`wait_worker_ready`). With the memory
    store (the default) its table lives only in its changelog; ``data_dir`` (default: one per
    ``name``) holds a RocksDB store."""
    port = free_port()
    env = {
        "CALLSTREAM_TIMER_INTERVAL_S": "1",  # a test's timeouts fire within a second
        **(extra_env or {}),
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
        "CALLSTREAM_DATA_DIR": str(data_dir or tmp / f"{name}-data"),
        "CALLSTREAM_STORE": store,
        "CALLSTREAM_APP_ID": app_id or f"{prefix}worker",
    }
    log = tmp / f"{name}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "callstream", "worker", "--web-port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Worker(process, log, port)


def wait_worker_ready(worker: Worker, deadline_s: float = 120) -> None:
    """Until its ``/readyz`` answers 200 (joined, table recovered); raises at the deadline."""
    if not wait_http_ok(f"http://127.0.0.1:{worker.web_port}/readyz", deadline_s):
        raise AssertionError(f"worker not ready:\n{worker.log.read_text()[-3000:]}")


@contextmanager
def worker_process(
    bootstrap: str,
    prefix: str,
    tmp: Path,
    *,
    app_id: str | None = None,
    name: str = "worker",
    extra_env: dict[str, str] | None = None,
    store: str = "memory",
    data_dir: Path | None = None,
) -> Iterator[Worker]:
    """A worker (see :func:`start_worker`), ready to process; stopped at the end."""
    worker = start_worker(
        bootstrap,
        prefix,
        tmp,
        app_id=app_id,
        name=name,
        extra_env=extra_env,
        store=store,
        data_dir=data_dir,
    )
    try:
        wait_worker_ready(worker)
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


async def post_all(ingress: Ingress, bodies: list[bytes]) -> None:
    for body in bodies:
        response = await ingress.client.post(ingress.url(), data=body, headers=JSON)
        assert response.status == 200, await response.text()


async def wait_for_states(
    ingress: Ingress, bootstrap: str, expected: Mapping[str, CallState], deadline_s: float = 90
) -> dict[str, CallState]:
    """The latest call-state of every call, once each expected call's equals the pure fold's
    (see :func:`state_mismatches` for what is compared); raises at the deadline."""
    records = await read_until(
        bootstrap,
        ingress.topics[CALL_STATE],
        lambda records: describe(state_mismatches(expected, _latest(records))),
        deadline_s=deadline_s,
    )
    return _latest(records)


async def wait_all_completed(
    ingress: Ingress,
    bootstrap: str,
    expected: Mapping[str, CallState],
    deadline_s: float = 90,
    *,
    replayed: bool = False,
) -> tuple[dict[str, CallState], list[ConsumerRecord]]:
    """The call states once every call is in its expected, completed state, and what
    calls-completed holds once each call's highest revision is the expected completed call
    (read on for 2 s to catch any double). Raises at the deadline, or when a revision is
    doubled (``replayed``: a worker was killed, see ``completed_mismatches``), or a state's
    revision is not its call's highest on calls-completed."""
    assert all(state.status == "completed" for state in expected.values())
    states = await wait_for_states(ingress, bootstrap, expected, deadline_s)
    completed = await read_until(
        bootstrap,
        ingress.topics[CALLS_COMPLETED],
        lambda records: describe(
            completed_mismatches(expected, _values(records), replayed=replayed)
        ),
        deadline_s=deadline_s,
        settle_s=2,
    )
    assert describe(completed_mismatches(expected, _values(completed), replayed=replayed)) is None
    highest = highest_revisions(_values(completed))
    assert {call: states[call].revision for call in expected} == {
        call: highest[call] for call in expected
    }
    return states, completed


async def api_states(worker_url: str, call_ids: list[str]) -> dict[str, CallState]:
    """Each call's state as ``/calls/{call_id}`` answers it."""
    found = {}
    async with aiohttp.ClientSession() as session:
        for call_id in call_ids:
            async with session.get(f"{worker_url}/calls/{call_id}") as got:
                assert got.status == 200, await got.text()
                found[call_id] = msgspec.json.decode(await got.read(), type=CallState)
    return found


def _latest(records: list[ConsumerRecord]) -> dict[str, CallState]:
    return latest_states(_values(records))


def _values(records: list[ConsumerRecord]) -> list[bytes | None]:
    return [record.value for record in records]
