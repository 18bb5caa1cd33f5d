"""The worker's faust wiring: its app, topics, table, agents, timer and web views. What each
does lives apart, tested without a broker: the agents' work per record in
processors/handlers.py, the writes in processors/sink.py (at-least-once: why and how), the
timer's in processors/sweep.py, the routes in processors/ops_views.py.

A second table and agent are added the same way: ``app.Table`` and ``TableSink.of(table,
batches)`` for the table, a handler that ends with ``batches.get().done(event)``, the table in
``Scrape``'s tables, and its changelog in processors/runtime.py's worker topics.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import faust

from callstream.processors.batches import SharedBatches
from callstream.processors.board_stream import register_wallboard
from callstream.processors.handlers import CommandHandler, FoldHandler
from callstream.processors.metric_retention import DROPS, MetricDrops, MetricSweep
from callstream.processors.metric_sinks import ShareWriter, WindowHandler, WindowReader
from callstream.processors.ops_metrics import Scrape, WorkerMetrics
from callstream.processors.ops_views import add_ops_views, worker_ready
from callstream.processors.private_api import aiokafka_producer
from callstream.processors.query_views import register_query_views
from callstream.processors.settings import WorkerSettings
from callstream.processors.sink import Outputs, StepSink, TableSink
from callstream.processors.step import stored_deadline_ms
from callstream.processors.store_memory import StoreMemory
from callstream.processors.sweep import OpenCalls, Sweep
from callstream.processors.transport import broker_urls, check_transport
from callstream.schemas.topics import (
    CALL_EVENTS,
    CALL_STATE,
    CALLS_COMPLETED,
    CDRS,
    LIVE_CALLS,
    METRICS,
    REJECTED,
    topic,
    topic_names,
)

log = logging.getLogger("callstream.processors")

OUTPUT_TOPICS = (CALL_STATE, CALLS_COMPLETED, LIVE_CALLS, REJECTED)
COMMANDS = "commands"  # internal topic: <app id>-commands
TABLE = "call-state"  # its changelog: <app id>-call-state-changelog
# Each input partition's share of each window: rows of the call-state table under SHARE_ROWS,
# a byte no UTF-8 call id starts with (docs/architecture.md, The worker's guarantee).
SHARES_TABLE = "metric-shares"
SHARE_ROWS = b"\xff"
SHARE_UPDATES = "share-updates"  # internal topic: <app id>-share-updates, keyed by dimension
WINDOWS_TABLE = "metric-windows"  # each window's shares, on its dimension's partition
RESEND_CHECK_S = 1.0  # how soon after a rebalance the worker sends its shares again
PRODUCER_LINGER_S = 0.005
PRODUCER_REQUEST_TIMEOUT_S = 30.0
# A batch never fills before a flush does (processors/batches.py, MAX_PARTITION_BYTES); the
# broker takes batches up to its message.max.bytes, 1 MB by default.
PRODUCER_MAX_BATCH_BYTES = 1024 * 1024
# faust's RocksDB defaults hold, per partition, up to three 64 MB memtables and a 2 GB block
# cache: a worker with 12 partitions grew past 500 MB before it held 300k call states. Each
# partition's memtables are at most 2 x 8 MB, and all of the worker's stores share one memory
# budget (processors/store_memory.py).
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
}
RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def commands_topic_name(app_id: str) -> str:
    return f"{app_id}-{COMMANDS}"


def changelog_topic_name(app_id: str, table: str = TABLE) -> str:
    """The name faust gives a table's changelog topic (an app of version 1)."""
    return f"{app_id}-{table}-changelog"


def share_updates_topic_name(app_id: str) -> str:
    return f"{app_id}-{SHARE_UPDATES}"


def resend_shares_after_rebalances(
    app: faust.App, writer: ShareWriter, source_topic: str, ready: Callable[[], bool]
) -> None:
    """After each rebalance, once the worker is ready (its tables recovered, no rebalance
    running), every share of its partitions to its window's owner again: a worker killed after
    a flush's changelog and before its share updates left shares no window has, and their
    inputs, processed again, change nothing (processors/metric_sinks.py)."""
    done_for = -1  # the rebalance whose partitions' shares were sent again

    @app.timer(RESEND_CHECK_S)  # type: ignore[untyped-decorator]  # faust's typing
    async def resend_shares() -> None:
        nonlocal done_for
        if not ready() or app.rebalancing_count == done_for:
            return
        done_for = app.rebalancing_count
        assigned = app.consumer.assignment()
        count = writer.resend(tp.partition for tp in assigned if tp.topic == source_topic)
        log.info("sending the %d metric shares of this worker's partitions again", count)


def create_worker_app(settings: WorkerSettings) -> faust.App:
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
        # faust's own pages would show the tables' contents (customers' numbers) and its
        # routing to anyone who reaches the port; the query API is what the worker serves.
        web_router_enabled=False,
        web_tables_enabled=False,
        topic_partitions=partitions,
        # run_worker resolves None (the cluster's brokers, 3 at most) before it makes the app.
        topic_replication_factor=settings.replication_factor or 1,
        processing_guarantee="at_least_once",
        producer_acks=-1,  # and idempotent: processors/transport.py's Producer
        # Each produce request's own deadline (faust's default is 20 minutes); a flush has its
        # deadline too (processors/batches.py, DELIVERY_DEADLINE_S), as retries never expire.
        producer_request_timeout=PRODUCER_REQUEST_TIMEOUT_S,
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
    share_updates = app.topic(
        share_updates_topic_name(settings.app_id), partitions=partitions, internal=True, **RAW
    )
    options = ROCKSDB_OPTIONS if settings.store.startswith("rocksdb") else None
    tables = {
        name: app.Table(
            name, partitions=partitions, key_type=bytes, value_type=bytes, options=options
        )
        for name in (TABLE, WINDOWS_TABLE)
    }
    store_memory = StoreMemory.shared_by(t.data for t in tables.values()) if options else None
    metrics = WorkerMetrics.create()
    batches = SharedBatches(lambda: aiokafka_producer(app.producer), metrics.observe_flush)
    calls = TableSink.of(tables[TABLE], batches)
    shares = calls.section(SHARES_TABLE, SHARE_ROWS)
    windows = TableSink.of(tables[WINDOWS_TABLE], batches)
    open_calls = OpenCalls(
        settings.full_scan_interval_s, functools.partial(stored_deadline_ms, settings=settings.fold)
    )
    outputs = Outputs({name: names[name] for name in OUTPUT_TOPICS}, batches)
    share_writer = ShareWriter(
        shares,
        calls,
        share_updates.get_topic_name(),
        partitions,
        settings=settings.metrics,
        observe_late=metrics.late_dropped,
    )
    sink = StepSink(
        calls, outputs, open_calls, share_writer, observe_completed=metrics.observe_completed
    )
    fold_window = WindowHandler(
        windows,
        names[METRICS],
        batches,
        settings=settings.metrics,
        observe_emit=metrics.window_emitted,
    )
    fold_one = FoldHandler(sink, batches, metrics.observe_folded)
    run_command = CommandHandler(sink, batches, settings.fold, metrics.observe_folded)

    @app.agent(source)
    async def fold(stream: Any) -> None:
        async for event in stream.noack().events():
            await fold_one(event)

    drop_rows = MetricDrops(shares, windows, settings.metrics)

    @app.agent(commands)
    async def run_commands(stream: Any) -> None:
        async for event in stream.noack().events():
            if event.value in DROPS:
                await drop_rows.run(event.message.partition, event.key, event.value)
                await batches.get().done(event)
            else:
                await run_command(event)

    @app.agent(share_updates)
    async def fold_windows(stream: Any) -> None:
        async for event in stream.noack().events():
            await fold_window.apply(event.message.partition, event.value)
            await batches.get().done(event)

    async def send_command(key: bytes, command: bytes, partition: int | None = None) -> None:
        """A command to the agent: on ``key``'s partition, or on ``partition`` when given."""
        await commands.send(key=key, value=command, partition=partition)

    def ready() -> bool:
        return worker_ready(app)

    resend_shares_after_rebalances(app, share_writer, names[CALL_EVENTS], ready)

    sweep = Sweep(
        calls,
        open_calls,
        send_command,
        partitions,
        ready=ready,
        rebalances=lambda: app.rebalancing_count,
    )

    @app.timer(settings.timer_interval_s)  # type: ignore[untyped-decorator]  # faust's typing
    async def sweep_calls() -> None:
        await sweep.tick()

    metric_sweep = MetricSweep(
        shares,
        windows,
        send_command,
        partitions,
        settings=settings.metrics,
        ready=ready,
        interval_s=settings.full_scan_interval_s,
    )

    @app.timer(settings.timer_interval_s)  # type: ignore[untyped-decorator]  # faust's typing
    async def sweep_metrics() -> None:
        await metric_sweep.tick()

    scrape = Scrape(
        metrics,
        {TABLE: calls, SHARES_TABLE: shares, WINDOWS_TABLE: windows},
        lambda: app.consumer,
        topics=(
            names[CALL_EVENTS],
            names[CDRS],
            commands.get_topic_name(),
            share_updates.get_topic_name(),
        ),
        ready=ready,
        store_memory=store_memory,
    )
    add_ops_views(app, ready, scrape)
    live = register_query_views(
        app,
        settings,
        table=TABLE,
        states=calls.get,
        ready=ready,
        windows=WindowReader(windows, partitions, settings.metrics),
    )
    register_wallboard(app, settings, live)
    return app
