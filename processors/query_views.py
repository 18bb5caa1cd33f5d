"""The worker's query API: ``/calls/{call_id}``, ``/calls/live``, ``/metrics/{dimension}[/{value}]``
and ``/openapi.json``, on faust's aiohttp server.

The handlers are thin: parameters are read by processors/params.py, the live counts made by
processors/live_view.py, a key owned by another worker is answered by it
(processors/routing.py). Every error is JSON (callstream/webapp.py's middleware), unknown routes
included. :func:`add_query_routes` works on any aiohttp application (the tests' too);
:func:`register_query_views` wires it into the worker's faust app.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from aiohttp import web

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.callmetrics.windows import dimension_key
from callstream.processors.live_feed import LiveFeed
from callstream.processors.live_view import LiveView, summarize
from callstream.processors.openapi import openapi_document
from callstream.processors.params import (
    WINDOWS,
    BadRequest,
    parse_live_query,
    parse_metrics_query,
)
from callstream.processors.routing import ANSWERED_BY, Forwarder, TableOwners, not_ready
from callstream.processors.settings import WorkerSettings
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.topics import CALL_EVENTS, LIVE_CALLS, topic, topic_names
from callstream.webapp import Refusal, json_errors

CSV_FIELDS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(WindowMetrics))


class WindowSource(Protocol):
    """Where ``/metrics/{dimension}`` reads windows: the worker's metric-windows table."""

    def routing_key(self, dimension: str) -> bytes:
        """The key whose (input-like) partition holds this dimension's windows."""
        ...

    def windows(
        self, dimension: str, value: str | None, window: str, start_ms: int, end_ms: int
    ) -> list[WindowMetrics]:
        """The windows of ``value`` (``None``: every value) whose start is in
        ``[start_ms, end_ms)``, on this worker (it owns ``routing_key(dimension)``)."""
        ...


class NoWindows:
    """A :class:`WindowSource` holding nothing: the worker before it folds metrics."""

    def routing_key(self, dimension: str) -> bytes:
        return dimension_key(dimension)

    def windows(
        self, dimension: str, value: str | None, window: str, start_ms: int, end_ms: int
    ) -> list[WindowMetrics]:
        return []


class LiveSource(Protocol):
    """The calls in progress (processors/live_feed.py's :class:`LiveFeed`)."""

    @property
    def ready(self) -> bool: ...

    @property
    def view(self) -> LiveView: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Queries:
    """What the views read: ``states`` is the call-state table's ``TableStore.get(partition,
    key)``; ``ready`` says the worker's tables are recovered and it is not rebalancing."""

    states: Callable[[int, bytes], bytes | None]
    windows: WindowSource
    live: LiveSource
    forwarder: Forwarder
    ready: Callable[[], bool]
    partitions: int  # of the inputs, which every table is partitioned like
    clock_ms: Callable[[], int] = field(default=_now_ms)
    window_sizes: Collection[str] = WINDOWS  # the ones the worker counts


QUERIES = web.AppKey("queries", Queries)


def _bad_request(error: BadRequest) -> Refusal:
    return Refusal(400, "bad_request", str(error))


def _require_ready(queries: Queries) -> None:
    if not queries.ready():
        raise not_ready("the worker is recovering its tables or rebalancing")


def _json(body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, content_type="application/json", headers=headers)


def _answered_here(queries: Queries) -> dict[str, str]:
    """The header naming the worker whose table answered (a routed answer keeps it)."""
    return {ANSWERED_BY: queries.forwarder.owners.own_url}


async def call_state(request: web.Request) -> web.Response:
    """``GET /calls/{call_id}``: the call's joined state, as the call-state table holds it."""
    queries = request.app[QUERIES]
    call_id = request.match_info["call_id"]
    key = call_id.encode()
    partition = murmur2_partition(key, queries.partitions)
    forwarded = await queries.forwarder.answer_elsewhere(request, partition)
    if forwarded is not None:
        return forwarded
    _require_ready(queries)
    stored = queries.states(partition, key)
    if stored is None:
        raise Refusal(
            404,
            "not_found",
            f"no call {call_id!r}: unknown, or completed longer ago than the retention",
            _answered_here(queries),
        )
    return _json(stored, _answered_here(queries))


async def live_calls(request: web.Request) -> web.Response:
    """``GET /calls/live``: every worker reads the whole live-calls topic, so it answers here."""
    queries = request.app[QUERIES]
    try:
        filters = parse_live_query(request.query.items())
    except BadRequest as error:
        raise _bad_request(error) from None
    if not queries.live.ready:
        raise not_ready("the live view is still reading callstream.live-calls")
    answer = summarize(queries.live.view.calls(), queries.clock_ms(), filters)
    return _json(msgspec.json.encode(answer))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def windows_csv(windows: Sequence[WindowMetrics]) -> str:
    """A header row of ``WindowMetrics``' fields, then one row per window (empty: null)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for window in windows:
        row = msgspec.structs.asdict(window)
        writer.writerow([_cell(row[name]) for name in CSV_FIELDS])
    return out.getvalue()


def _cell(value: object) -> object:
    """A CSV cell; text a spreadsheet would run as a formula (a hotline or an agent's name
    comes from the provider's webhooks) is quoted with a leading apostrophe (OWASP's advice)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def metric_windows(request: web.Request) -> web.Response:
    """``GET /metrics/{dimension}[/{value}]``: answered by the worker owning the dimension's
    windows."""
    queries = request.app[QUERIES]
    try:
        query = parse_metrics_query(
            request.match_info["dimension"],
            request.match_info.get("value"),
            request.query.items(),
            queries.clock_ms(),
            queries.window_sizes,
        )
    except BadRequest as error:
        raise _bad_request(error) from None
    key = queries.windows.routing_key(query.dimension)
    forwarded = await queries.forwarder.answer_elsewhere(
        request, murmur2_partition(key, queries.partitions)
    )
    if forwarded is not None:
        return forwarded
    _require_ready(queries)
    found = queries.windows.windows(
        query.dimension, query.value, query.window, query.start_ms, query.end_ms
    )
    found = sorted(found, key=lambda window: (window.value, window.window_start_ms))
    if query.format == "csv":
        name = f"{query.dimension}-{query.window}.csv"
        return web.Response(
            text=windows_csv(found),
            content_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                **_answered_here(queries),
            },
        )
    return _json(msgspec.json.encode(found), _answered_here(queries))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(tuple(request.app[QUERIES].window_sizes)))


def add_query_routes(app: web.Application, queries: Queries) -> None:
    """The query routes on ``app``, and JSON for every error it answers."""
    app[QUERIES] = queries
    app.middlewares.append(json_errors)
    app.router.add_get("/calls/live", live_calls)  # before /calls/{call_id}, which it would match
    app.router.add_get("/calls/{call_id}", call_state)
    app.router.add_get("/metrics/{dimension}", metric_windows)
    app.router.add_get("/metrics/{dimension}/{value}", metric_windows)
    app.router.add_get("/openapi.json", openapi)

    async def close_forwarder(_app: web.Application) -> None:
        await queries.forwarder.close()

    app.on_cleanup.append(close_forwarder)


def faust_web_application(app: Any) -> web.Application:
    """The aiohttp application of a faust app's web server (its aiohttp driver, the default)."""
    application = getattr(app.web, "web_app", None)
    if not isinstance(application, web.Application):
        raise RuntimeError(
            f"the worker's query API needs faust's aiohttp web driver, not {app.conf.web!s}"
        )
    return application


def register_query_views(
    app: Any,
    settings: WorkerSettings,
    *,
    table: str,
    states: Callable[[int, bytes], bytes | None],
    ready: Callable[[], bool],
    windows: WindowSource | None = None,
) -> LiveFeed:
    """The query API on the faust app ``app``'s web server, and the live view's consumer as an
    app task (started once the app is, cancelled when it stops). ``table`` names the
    call-state table, whose assignment says which worker owns a partition."""
    feed = LiveFeed(settings.bootstrap_servers, topic_names(settings.topic_prefix)[LIVE_CALLS])
    app.task(feed.run)
    queries = Queries(
        states=states,
        windows=windows or NoWindows(),
        live=feed,
        forwarder=Forwarder(TableOwners(app, table)),
        ready=ready,
        partitions=topic(CALL_EVENTS).partitions,
        window_sizes=settings.metrics.windows,
    )
    add_query_routes(faust_web_application(app), queries)
    return feed
