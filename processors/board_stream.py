"""The wallboard: its page at ``/`` and its Server-Sent Events at ``/wallboard/events``, on
the worker's web server.

Every worker reads the whole of ``callstream.live-calls`` and the recent records of
``callstream.metrics`` (processors/topic_feed.py: consumers without a group, every
partition), so the board any worker serves is the whole call centre's, with no request to the
other workers. While a client watches, :class:`Wallboard` rebuilds the board when a feed
changed (at most every ``MIN_INTERVAL_S``, and every ``TICK_S`` for the clock: the hour, the
chart's minutes), numbers it, and pushes the patch to every client; a client starts with a
snapshot, or, reconnecting with ``Last-Event-ID``, with the patches it missed
(processors/board.py). Nobody watching, it does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson
from aiohttp import web

from callstream.processors.board import CHART_MINUTES, Board, BoardHistory, Patch, build_board
from callstream.processors.board_windows import BoardWindows
from callstream.processors.callmetrics.windows import (
    MINUTE_MS,
    MetricSettings,
    window_bounds,
)
from callstream.processors.live_feed import LiveFeed
from callstream.processors.live_view import LiveView
from callstream.processors.query_views import faust_web_application
from callstream.processors.settings import WorkerSettings
from callstream.processors.topic_feed import TopicFeed
from callstream.schemas.topics import METRICS, topic_names

log = logging.getLogger("callstream.processors.wallboard")
EVENTS_PATH = "/wallboard/events"
TICK_S = 5.0
MIN_INTERVAL_S = 0.5
HEARTBEAT_S = 15.0
PRUNE_S = 60.0  # nobody watching: how often the metrics view forgets the windows that ended
RETRY_MS = 2000  # the browser's wait before it reconnects
QUEUE_EVENTS = 64  # a client further behind is dropped; it reconnects and resumes
# Calls may start a little before the worker's clock says (the provider's clock): read the
# metrics from a little before the oldest window the board shows.
CLOCK_MARGIN_MS = 5 * MINUTE_MS
# The page loads its own two files and opens its own stream; nothing else, nothing inline.
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
}
ASSETS = {
    "index.html": "text/html",
    "wallboard.css": "text/css",
    "wallboard.js": "text/javascript",
}
V_co = TypeVar("V_co", covariant=True)


class Feed(Protocol, Generic[V_co]):
    """What the board reads of a feed (processors/topic_feed.py's ``TopicFeed``)."""

    @property
    def ready(self) -> bool: ...

    @property
    def view(self) -> V_co: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def metrics_since_ms(now_ms: int, settings: MetricSettings) -> int:
    """Where the metrics feed starts reading (by record time): the start of the oldest window
    a board shows now (the day's, or the chart's first minute), less a margin. A window's
    records are all written after it starts, since its calls completed after they started."""
    starts = [now_ms - CHART_MINUTES * MINUTE_MS]
    if "1d" in settings.windows:
        starts.append(window_bounds(now_ms, "1d", settings.tz)[0])
    elif "1h" in settings.windows:
        starts.append(window_bounds(now_ms, "1h", settings.tz)[0])
    return max(0, min(starts) - CLOCK_MARGIN_MS)


def sse_event(event_id: str, kind: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event: its id, its type and its JSON on one ``data`` line."""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        event_id.encode(),
        kind.encode(),
        orjson.dumps(data),
    )


@dataclass(eq=False)  # each client is itself: hashed by identity
class _Client:
    queue: asyncio.Queue[bytes | None]


class Wallboard:
    """The board's history and its watchers: run :meth:`run` as a task while the worker
    serves; call :meth:`changed` when a feed changed."""

    def __init__(
        self,
        live: Feed[LiveView],
        windows: Feed[BoardWindows],
        settings: MetricSettings,
        *,
        clock_ms: Callable[[], int] = _now_ms,
        epoch: str | None = None,
    ) -> None:
        self.live = live
        self.windows = windows
        self.settings = settings
        self.clock_ms = clock_ms
        self.history = BoardHistory(epoch or uuid.uuid4().hex[:12])
        self._clients: set[_Client] = set()
        self._changed = asyncio.Event()
        self._watched = asyncio.Event()
        self._closed = False

    def changed(self) -> None:
        self._changed.set()

    def _prune(self, now_ms: int) -> None:
        self.windows.view.prune(metrics_since_ms(now_ms, self.settings))

    def _board(self) -> Board:
        now = self.clock_ms()
        self._prune(now)
        return build_board(
            self.live.view.calls(),
            self.windows.view.windows(),
            now,
            self.settings,
            live_ready=self.live.ready,
            metrics_ready=self.windows.ready,
        )

    def refresh(self) -> None:
        """Rebuild the board now; push its patch, if it changed, to every client."""
        advanced = self.history.advance(self._board())
        if advanced is None:
            return
        event = self._patch_event(*advanced)
        for client in list(self._clients):
            self._send(client, event)

    def _patch_event(self, event_id: str, patch: Patch) -> bytes:
        return sse_event(event_id, "patch", {"as_of_ms": self.clock_ms(), "patch": patch})

    def _send(self, client: _Client, event: bytes | None) -> None:
        try:
            client.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Too far behind: end its stream after the last event it was sent, none skipped,
            # so that it resumes from that one's id (the patches after it, or a snapshot).
            self._clients.discard(client)
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(None)

    def opening(self, last_event_id: str | None) -> list[bytes]:
        """What a client gets first: the patches after ``last_event_id`` when they are kept,
        else a snapshot of the board as it is now."""
        self.refresh()
        missed = self.history.since(last_event_id)
        if missed is not None:
            return [self._patch_event(event_id, patch) for event_id, patch in missed]
        board = {"as_of_ms": self.clock_ms(), "board": self.history.board}
        return [sse_event(self.history.event_id(), "snapshot", board)]

    @contextlib.contextmanager
    def watching(self) -> Iterator[asyncio.Queue[bytes | None]]:
        """A client's queue of events while it watches (``None``: its stream ends)."""
        client = _Client(asyncio.Queue(QUEUE_EVENTS))
        if self._closed:
            client.queue.put_nowait(None)
        else:
            self._clients.add(client)
            self._watched.set()
        try:
            yield client.queue
        finally:
            self._clients.discard(client)
            if not self._clients:
                self._watched.clear()

    async def run(self) -> None:
        """Until cancelled: while someone watches, refresh on every change, at most every
        ``MIN_INTERVAL_S``, and every ``TICK_S`` anyway; while nobody does, only keep the
        metrics view from growing."""
        while True:
            if not self._watched.is_set():
                self._prune(self.clock_ms())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._watched.wait(), PRUNE_S)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), TICK_S)
            self._changed.clear()
            self.refresh()
            await asyncio.sleep(MIN_INTERVAL_S)

    async def close(self, _app: web.Application | None = None) -> None:
        """End every stream (the server is stopping: it waits for its handlers)."""
        self._closed = True
        for client in list(self._clients):
            self._send(client, None)


WALLBOARD = web.AppKey("wallboard", Wallboard)
_ASSET_BYTES = web.AppKey("wallboard_assets", dict)


async def board_events(request: web.Request) -> web.StreamResponse:
    """``GET /wallboard/events``: the board as Server-Sent Events, until the client leaves."""
    board = request.app[WALLBOARD]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # a proxy in front (nginx) passes each event on at once
        }
    )
    await response.prepare(request)
    # The opening first: its refresh must not also reach this client's queue. Nothing waits
    # between the two, so no patch falls between them either.
    opening = board.opening(request.headers.get("Last-Event-ID"))
    with board.watching() as queue:
        try:
            await response.write(b"retry: %d\n\n" % RETRY_MS + b"".join(opening))
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                await response.write(event)
        except ConnectionError:
            pass  # the client left
    return response


def load_assets() -> dict[str, bytes]:
    """The page's files, read once: package data of ``callstream.processors`` (static/)."""
    folder = importlib.resources.files("callstream.processors") / "static"
    return {name: (folder / name).read_bytes() for name in ASSETS}


def _asset(name: str) -> Callable[[web.Request], Any]:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=request.app[_ASSET_BYTES][name],
            content_type=ASSETS[name],
            charset="utf-8",
            headers=PAGE_HEADERS,
        )

    return serve


def add_wallboard_routes(app: web.Application, board: Wallboard) -> None:
    """``/`` (the page), its two files under ``/wallboard/``, and the events, on ``app``."""
    app[WALLBOARD] = board
    app[_ASSET_BYTES] = load_assets()
    app.router.add_get("/", _asset("index.html"))
    for name in ASSETS:
        if name != "index.html":
            app.router.add_get(f"/wallboard/{name}", _asset(name))
    app.router.add_get(EVENTS_PATH, board_events)
    app.on_shutdown.append(board.close)


def register_wallboard(app: Any, settings: WorkerSettings, live: LiveFeed) -> Wallboard:
    """The wallboard on the faust app ``app``'s web server: its metrics feed and its
    refreshing as app tasks, and ``live`` (the query API's feed) telling it of changes."""
    windows = TopicFeed(
        settings.bootstrap_servers,
        topic_names(settings.topic_prefix)[METRICS],
        BoardWindows(),
        since_ms=lambda: metrics_since_ms(_now_ms(), settings.metrics),
    )
    board = Wallboard(live, windows, settings.metrics)
    live.on_change = windows.on_change = board.changed
    app.task(windows.run)
    app.task(board.run)
    add_wallboard_routes(faust_web_application(app), board)
    return board
