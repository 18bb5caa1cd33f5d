"""The Faust app: one agent folds live events and CDRs into the call-state table and publishes
what the fold says; a timer asks the agent to complete overdue calls and evict old ones.

Every table change happens inside the agent, on the partition of the record being processed
(faust's RocksDB store requires it): the timer only reads the table and sends a command,
keyed by call id, to an internal topic the agent also consumes. All of one call's records -
events, CDR, commands - share a key and so a partition. At-least-once: each record's outputs
and changelog record are acknowledged by Kafka before the agent moves on, so a committed offset
never hides a lost
output or table change; a redelivered record is harmless because the fold is idempotent.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from callstream.processors.callstate import evictable, next_deadline_ms
from callstream.processors.settings import WorkerSettings
from callstream.processors.step import Step, decode_state, expire_stored, fold_record
from callstream.schemas.topics import (
    CALL_EVENTS,
    CALL_STATE,
    CALLS_COMPLETED,
    CDRS,
    LIVE_CALLS,
    REJECTED,
    topic,
    topic_names,
)

log = logging.getLogger("callstream.processors")

OUTPUT_TOPICS = (CALL_STATE, CALLS_COMPLETED, LIVE_CALLS, REJECTED)
COMMANDS = "commands"  # internal topic: <app id>-commands
EXPIRE, EVICT = b"expire", b"evict"
RECEIVED_AT_HEADER = "callstream-received-at-ms"
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _received_at_ms(event: Any) -> int:
    """The ingress's receive time when it is on the record, else the record's timestamp."""
    headers = event.message.headers or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        if name == RECEIVED_AT_HEADER:
            try:
                return int(value)
            except ValueError:
                break
    return int(event.message.timestamp * 1000)


def _brokers(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


def create_worker_app(settings: WorkerSettings) -> faust.App:
    """The worker's Faust app, with its agent, table, timer and web views."""
    partitions = topic(CALL_EVENTS).partitions
    app = faust.App(
        settings.app_id,
        broker=_brokers(settings.bootstrap_servers),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(settings.session_timeout_s / 6, 0.5),
        broker_rebalance_timeout=max(settings.session_timeout_s * 2, 20.0),
        key_serializer="raw",  # also the table's: its values are CallState JSON bytes
        value_serializer="raw",
    )
    names = topic_names(settings.topic_prefix)
    commands = app.topic(
        f"{settings.app_id}-{COMMANDS}", partitions=partitions, internal=True, **RAW
    )
    source = app.topic(names[CALL_EVENTS], names[CDRS], **RAW)
    sinks = {name: app.topic(names[name], **RAW) for name in OUTPUT_TOPICS}
    table = app.Table("call-state", partitions=partitions, key_type=bytes, value_type=bytes)
    fold_settings = settings.fold

    async def apply_step(step: Step) -> None:
        """Store and publish; return only once Kafka has acknowledged the table's changelog
        record and every output, so a committed offset never runs ahead of them (a worker
        taking over the partition would otherwise recover a table that misses this record)."""
        if step.call_id is not None and step.stored is not None:
            table[step.call_id.encode()] = step.stored
        for record in step.records:
            await sinks[record.topic].send(key=record.key, value=record.value)
        if step.stored is not None or step.records:
            await app.producer.flush()

    @app.agent(source)
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            step = fold_record(
                lambda call_id: table.get(call_id.encode()), event.value, _received_at_ms(event)
            )
            await apply_step(step)

    @app.agent(commands)
    async def run_commands(stream: Any) -> None:
        async for event in stream.events():
            stored = table.get(event.key)
            if stored is None:
                continue
            if event.value == EVICT:
                if evictable(decode_state(stored), _now_ms(), fold_settings.retention_ms):
                    del table[event.key]
                    await app.producer.flush()
                continue
            await apply_step(expire_stored(stored, _now_ms(), fold_settings))

    @app.timer(settings.timer_interval_s)  # type: ignore[untyped-decorator]  # faust's typing
    async def sweep() -> None:
        """Find calls whose deadline passed (read only) and send the agent a command each."""
        now = _now_ms()
        for key, stored in list(table.items()):
            state = decode_state(stored)
            if next_deadline_ms(state, fold_settings) > now:
                continue
            command = EVICT if state.status == "completed" else EXPIRE
            await commands.send(key=key, value=command)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        """200 once the worker has joined its group and recovered its tables."""
        recovery = app.tables.recovery  # type: ignore[attr-defined]  # on the concrete manager
        ready = recovery.completed.is_set() and not app.rebalancing
        body = {"status": "ok" if ready else "starting", "service": "worker"}
        return web.json(body, status=200 if ready else 503)

    return app
