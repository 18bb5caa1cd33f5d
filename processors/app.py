"""The Faust app: one agent folds live events and CDRs into the call-state table and publishes
what the fold says; a timer asks the agent to complete overdue calls and evict old ones.

Every table change happens inside the agent, on the partition of the record being processed
(faust's RocksDB store requires it): the timer only reads the table and sends a command,
keyed by call id, to an internal topic the agent also consumes. All of one call's records -
events, CDR, commands - share a key and so a partition.

At-least-once, without a broker round-trip per record. The agents consume with acks off
(``stream.noack()``) and acknowledge an input record only once Kafka has acknowledged
(acks=all) everything it produced: the table's changelog record and its outputs, which
``Publisher`` appends to ``OutputBatches`` (processors/batches.py), a Kafka batch per topic
partition flushed every 20 ms. So the agent moves on at once and many records share
a batch. faust commits, per partition, only up to the first record not yet acknowledged, and
flushes the producer before every commit too, so a committed offset never runs ahead of an
output or a table change; a worker taking over the partition recovers a table that has every
committed record in it. A record whose batch fails is never acknowledged: the worker logs it
and exits (``EXIT_SEND_FAILED``) so that a restart, or the worker taking over, processes it
again (an unacknowledged record would otherwise hold up every later commit and a clean
shutdown). Acks come from delivery callbacks, never from "the next record", so a quiet
partition does not leave its last records unacknowledged (faust waits for every record in
flight before a rebalance or a shutdown goes on). A record processed twice changes nothing the
second time: the fold is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import faust

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.batches import OutputBatches
from callstream.processors.callstate import evictable
from callstream.processors.query_views import register_query_views
from callstream.processors.settings import WorkerSettings
from callstream.processors.step import (
    Step,
    decode_state,
    expire_stored,
    fold_record,
    stored_deadline_ms,
)
from callstream.processors.sweep import OpenCalls, due_calls
from callstream.processors.tablestore import TableStore
from callstream.processors.transport import broker_urls, check_transport
from callstream.schemas.headers import RECEIVED_AT_MS
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
TABLE = "call-state"  # its changelog: <app id>-call-state-changelog
EXPIRE, EVICT = b"expire", b"evict"
PRODUCER_LINGER_S = 0.005
# A batch never fills before a flush does (processors/batches.py, MAX_FLUSH_BYTES).
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024
# faust's RocksDB defaults hold, per partition, up to three 64 MB memtables and a 2 GB block
# cache: a worker with 12 partitions grew past 500 MB before it held 300k call states. These
# bound each partition's store to 2 x 8 MB memtables and an 8 MB block cache.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024 * 1024,
}
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
        if name == RECEIVED_AT_MS:
            try:
                return int(value)
            except ValueError:
                break
    return int(event.message.timestamp * 1000)


def _ready(app: faust.App) -> bool:
    """Joined its group, and its tables recovered."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # on the concrete manager
    return bool(recovery.completed.is_set() and not app.rebalancing)


def commands_topic_name(app_id: str) -> str:
    return f"{app_id}-{COMMANDS}"


def changelog_topic_name(app_id: str) -> str:
    """The name faust gives the table's changelog topic (an app of version 1)."""
    return f"{app_id}-{TABLE}-changelog"


class Publisher:
    """Writes the call-state table and appends outputs to ``OutputBatches``, so that nothing
    waits for Kafka per record and an input record is acked once its outputs are delivered.

    A faust table write queues its changelog record in faust's producer buffer and hides the
    send's future; so this writes the table's store and adds the same changelog record (key,
    value, the input record's partition: faust's own choice for a table without a partitioner)
    to the batches itself, and once Kafka has it records the offset in the store as faust
    would, so that a restart recovers only the changelog past it.
    """

    def __init__(
        self, app: faust.App, table: Any, sinks: dict[str, str], open_calls: OpenCalls
    ) -> None:
        self.app = app
        self.store = TableStore(table.data)
        self.open_calls = open_calls
        self.changelog: str = table.changelog_topic.get_topic_name()
        self.sinks = sinks
        self._batches: OutputBatches | None = None

    @property
    def batches(self) -> OutputBatches:
        """Made on first use: faust makes its aiokafka producer when the app starts."""
        if self._batches is None:
            producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
            self._batches = OutputBatches(producer)
        return self._batches

    def get(self, event: Any, key: bytes) -> bytes | None:
        """The stored state under ``key``, in the partition of ``event``."""
        return self.store.get(event.message.partition, key)

    def loader(self, event: Any) -> Callable[[str], bytes | None]:
        """``fold_record``'s ``load``: a call's stored state, in the partition of ``event``."""
        database, partition = self.store, event.message.partition
        return lambda call_id: database.get(partition, call_id.encode())

    async def write(self, event: Any, key: bytes, value: bytes | None, *, is_open: bool) -> None:
        """``table[key] = value`` (``del`` for None), and its changelog record; ``is_open``:
        the call is not completed, so the timer checks it every tick."""
        partition = event.message.partition
        applied = self.store.put(partition, key, value)
        self.open_calls.note(key, partition, is_open)
        await self.batches.add(self.changelog, partition, key, value, applied)

    async def apply(self, event: Any, step: Step) -> None:
        """Store the step's state and add its records."""
        batches = self.batches
        # Partitions first: looking one up may wait for metadata, and a flush in that wait
        # would split the changelog record from the outputs.
        sinks = [self.sinks[record.topic] for record in step.records]
        partitions = [
            await batches.partition(sink, record.key)
            for sink, record in zip(sinks, step.records, strict=True)
        ]
        if step.call_id is not None and step.stored is not None:
            await self.write(event, step.call_id.encode(), step.stored, is_open=step.is_open)
        for sink, partition, record in zip(sinks, partitions, step.records, strict=True):
            await batches.add(sink, partition, record.key, record.value)

    async def done(self, event: Any) -> None:
        """Every record ``event`` caused is added: ack it once they are delivered."""
        await self.batches.done(event)


def create_worker_app(settings: WorkerSettings) -> faust.App:  # noqa: PLR0915 - being split up
    """The worker's Faust app, with its agent, table, timer and web views."""
    check_transport()
    partitions = topic(CALL_EVENTS).partitions
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.bootstrap_servers),
        store=settings.store,
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.canonical_url,  # the URL the query API routes requests to
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
        commands_topic_name(settings.app_id), partitions=partitions, internal=True, **RAW
    )
    source = app.topic(names[CALL_EVENTS], names[CDRS], **RAW)
    table = app.Table(
        TABLE,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        options=ROCKSDB_OPTIONS if settings.store.startswith("rocksdb") else None,
    )
    open_calls = OpenCalls(settings.full_scan_interval_s)
    out = Publisher(app, table, {name: names[name] for name in OUTPUT_TOPICS}, open_calls)
    fold_settings = settings.fold

    @app.agent(source)
    async def fold(stream: Any) -> None:
        async for event in stream.noack().events():
            step = fold_record(out.loader(event), event.value, _received_at_ms(event))
            await out.apply(event, step)
            await out.done(event)

    @app.agent(commands)
    async def run_commands(stream: Any) -> None:
        async for event in stream.noack().events():
            await run_command(event)
            await out.done(event)

    async def run_command(event: Any) -> None:
        stored = out.get(event, event.key)
        if stored is None:
            return
        if event.value == EVICT:
            if evictable(decode_state(stored), _now_ms(), fold_settings.retention_ms):
                await out.write(event, event.key, None, is_open=False)
            return
        await out.apply(event, expire_stored(stored, _now_ms(), fold_settings))

    def deadline_of(stored: bytes) -> tuple[int, bool]:
        return stored_deadline_ms(stored, fold_settings)

    @app.timer(settings.timer_interval_s)  # type: ignore[untyped-decorator]  # faust's typing
    async def sweep() -> None:
        """Find calls whose deadline passed (read only) and send the agent a command each.

        Reads the open calls, or now and then every state (processors/sweep.py). The reads do
        not yield to the event loop, so the agent cannot change the table under them.
        """
        if not _ready(app):
            return  # a table still recovering would be scanned in part
        now, started = _now_ms(), time.monotonic()
        rebalance = app.rebalancing_count
        if open_calls.full_scan_due(started, rebalance):
            due, still_open = due_calls(out.store.items(), deadline_of, now)
            # The table's partition of a key is its input records' (the default partitioner).
            found = {key: murmur2_partition(key, partitions) for key in still_open}
            open_calls.rebuilt(found, time.monotonic(), rebalance)
            seconds = time.monotonic() - started  # the agent waited this long: say so
            log.info(
                "scanned the call-state table in %.2f s: %d open, %d due",
                seconds,
                len(found),
                len(due),
            )
        else:
            stored = []
            for key, partition in open_calls.items():
                value = out.store.get(partition, key)
                if value is None:  # deleted since: not by the agent, which notes its deletes
                    open_calls.note(key, partition, is_open=False)
                else:
                    stored.append((key, value))
            due, _ = due_calls(stored, deadline_of, now)
        for key, completed in due:
            await commands.send(key=key, value=EVICT if completed else EXPIRE)

    register_query_views(
        app, settings, table=TABLE, states=out.store.get, ready=lambda: _ready(app)
    )

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        """200 once the worker has joined its group and recovered its tables."""
        ready = _ready(app)
        body = {"status": "ok" if ready else "starting", "service": "worker"}
        return web.json(body, status=200 if ready else 503)

    return app
