"""The Faust app: one agent folds live events and CDRs into the call-state table and publishes
what the fold says; a timer asks the agent to complete overdue calls and evict old ones.

Every table change happens inside the agent, on the partition of the record being processed
(faust's RocksDB store requires it): the timer only reads the table and sends a command,
keyed by call id, to an internal topic the agent also consumes. All of one call's records -
events, CDR, commands - share a key and so a partition.

At-least-once, without a broker round-trip per record. The agents consume with acks off
(``stream.noack()``) and acknowledge an input record only from the delivery callbacks of what
it produced: its outputs and the table's changelog record (``TrackedTable`` hands over the
changelog send's future). So the agent moves on at once, many records' sends travel in the same
producer batches, and a record counts as processed - faust may commit its offset - only once
Kafka has acknowledged (acks=all) everything it produced. faust commits the highest offset below
the first record not acked yet, and flushes the producer before every commit as well. A record
whose send fails is never acked: the worker logs it and exits (``EXIT_SEND_FAILED``) so that
a restart, or the worker taking over the partition, gets it again rather than this one hanging
on shutdown with an unacknowledged record. A redelivered record is harmless because the fold is
idempotent. Acks come from callbacks, never from "the next record", so a quiet partition does
not keep its last records unacknowledged (which would stall a rebalance or a shutdown: faust
waits for every record in flight to be acked first).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, cast

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
PRODUCER_LINGER_S = 0.005
PRODUCER_MAX_BATCH_BYTES = 256 * 1024
EXIT_SEND_FAILED = 70  # EX_SOFTWARE: Kafka refused a record; a restart redelivers its input
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


class TrackedTable(faust.Table[bytes, bytes]):
    """A table that keeps the futures of its changelog sends until ``take_sent`` collects them.

    A table write only queues its changelog record (``send_soon``); the future says when Kafka
    has acknowledged it, which is what the agent waits for before acknowledging its input.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent: list[asyncio.Future[Any]] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        sent = super().send_changelog(*args, **kwargs)
        self._sent.append(sent)
        return sent

    def take_sent(self) -> list[asyncio.Future[Any]]:
        sent, self._sent = self._sent, []
        return sent


class _AckWhenDelivered:
    """Acknowledges one input record once every send it caused is acknowledged by Kafka."""

    __slots__ = ("event", "remaining")

    def __init__(self, event: Any, sends: list[asyncio.Future[Any]]) -> None:
        self.event = event
        self.remaining = len(sends)
        for send in sends:
            send.add_done_callback(self.delivered)

    def delivered(self, send: asyncio.Future[Any]) -> None:
        if send.cancelled():  # the producer stopped under it: not processed, so not acked
            log.warning("a send was cancelled; its input record stays unacknowledged")
            return
        error = send.exception()
        if error is not None:
            message = self.event.message
            log.critical(
                "Kafka refused a record produced for %s[%d]@%d: %r; exiting so that the "
                "input is processed again",
                message.topic,
                message.partition,
                message.offset,
                error,
            )
            logging.shutdown()
            os._exit(EXIT_SEND_FAILED)
        self.remaining -= 1
        if self.remaining == 0:
            self.event.ack()


def ack_when_delivered(event: Any, sends: list[asyncio.Future[Any]]) -> None:
    """Ack ``event`` now if it sent nothing, else once Kafka acknowledged all of ``sends``."""
    if sends:
        _AckWhenDelivered(event, sends)
    else:
        event.ack()


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
        # Nothing waits on a single send, so let records share batches: fewer, larger requests.
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
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
    sinks = {name: names[name] for name in OUTPUT_TOPICS}
    table = TrackedTable(
        app,
        name="call-state",
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
    )
    app.tables.add(table)
    fold_settings = settings.fold

    async def apply_step(step: Step) -> list[asyncio.Future[Any]]:
        """Store and publish without waiting for Kafka; the sends' futures, changelog first."""
        producer = app.producer
        if step.call_id is not None and step.stored is not None:
            table[step.call_id.encode()] = step.stored
        sends = table.take_sent()
        for record in step.records:
            # The producer's own send (faust's ProducerT API): a Topic's send wraps every
            # record in faust's futures and sensors, which cost more than the fold here.
            sent = await producer.send(
                sinks[record.topic], record.key, record.value, None, None, None
            )
            sends.append(cast(asyncio.Future[Any], sent))  # aiokafka's delivery future
        return sends

    def load(call_id: str) -> bytes | None:
        stored: bytes | None = table.get(call_id.encode())
        return stored

    @app.agent(source)
    async def fold(stream: Any) -> None:
        async for event in stream.noack().events():
            step = fold_record(load, event.value, _received_at_ms(event))
            ack_when_delivered(event, await apply_step(step))

    @app.agent(commands)
    async def run_commands(stream: Any) -> None:
        async for event in stream.noack().events():
            ack_when_delivered(event, await run_command(event.key, event.value))

    async def run_command(key: bytes, command: bytes) -> list[asyncio.Future[Any]]:
        stored = table.get(key)
        if stored is None:
            return []
        if command == EVICT:
            if evictable(decode_state(stored), _now_ms(), fold_settings.retention_ms):
                del table[key]
            sent: list[asyncio.Future[Any]] = table.take_sent()
            return sent
        return await apply_step(expire_stored(stored, _now_ms(), fold_settings))

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
