"""The wallboard's routes on the worker's web server: its page at ``/`` (package data,
processors/static/) and its Server-Sent Events at ``/wallboard/events``, which stream what
processors/board_hub.py's :class:`Wallboard` pushes.

Every worker reads the whole of ``callstream.live-calls`` and the recent records of
``callstream.metrics`` (processors/topic_feed.py: consumers without a group, every
partition), so the board any worker serves is the whole call centre's, with no request to the
other workers (docs/architecture.md, The wallboard).
"""

from __future__ import annotations

import asyncio
import importlib.resources
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callstream.processors.board_hub import Wallboard, metrics_since_ms, wall_clock_ms
from callstream.processors.board_windows import BoardWindows
from callstream.processors.live_feed import LiveFeed
from callstream.processors.query_views import faust_web_application
from callstream.processors.settings import WorkerSettings
from callstream.processors.topic_feed import TopicFeed
from callstream.schemas.topics import METRICS, topic_names

EVENTS_PATH = "/wallboard/events"
HEARTBEAT_S = 15.0
RETRY_MS = 2000  # the browser's wait before it reconnects
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
        since_ms=lambda: metrics_since_ms(wall_clock_ms(), settings.metrics),
    )
    board = Wallboard(live, windows, settings.metrics)
    live.on_change = windows.on_change = board.changed
    app.task(windows.run)
    app.task(board.run)
    add_wallboard_routes(faust_web_application(app), board)
    return board
