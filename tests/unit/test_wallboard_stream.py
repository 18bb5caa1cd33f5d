"""The wallboard's routes on a real aiohttp server, fed by in-memory views: the page and its
files, and the events: a snapshot first, a patch when a feed changes, the missed patches for a
client that comes back with ``Last-Event-ID`` (a snapshot when they are not kept), and the end
of every stream when the server stops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callstream.processors.board_hub import QUEUE_EVENTS, Wallboard
from callstream.processors.board_stream import EVENTS_PATH, add_wallboard_routes
from callstream.processors.board_windows import BoardWindows
from callstream.processors.callmetrics.windows import MetricSettings
from callstream.processors.live_view import LiveView
from callstream.schemas.calls import LiveCall
from callstream.schemas.metrics import WindowMetrics
from tests.sse_support import next_event

NOW = 1_764_559_815_000


@dataclass
class Held:
    """A feed without Kafka: its view is filled by the test."""

    view: Any
    ready: bool = True


@dataclass
class Board:
    client: TestClient
    board: Wallboard
    live: Held = field(default_factory=lambda: Held(LiveView()))


def ringing(call_id: str) -> tuple[bytes, bytes]:
    call = LiveCall(call_id=call_id, phase="ringing", ringing_at_ms=NOW, updated_at_ms=NOW)
    return call_id.encode(), msgspec.json.encode(call)


@pytest.fixture
async def served() -> AsyncIterator[Board]:
    live = Held(LiveView())
    board = Wallboard(
        live, Held(BoardWindows()), MetricSettings(), clock_ms=lambda: NOW, epoch="e1"
    )
    app = web.Application()
    add_wallboard_routes(app, board)
    async with TestClient(TestServer(app)) as client:
        yield Board(client, board, live)


async def test_the_page_and_its_files_are_served(served: Board) -> None:
    page = await served.client.get("/")
    assert page.status == 200
    assert page.content_type == "text/html"
    text = await page.text()
    assert 'lang="vi"' in text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("wallboard.js", "text/javascript"), ("wallboard.css", "text/css")):
        assert f"/wallboard/{name}" in text
        asset = await served.client.get(f"/wallboard/{name}")
        assert (asset.status, asset.content_type) == (200, kind)


async def test_a_snapshot_then_patches_and_a_returning_client_resumes(served: Board) -> None:
    served.live.view.apply(*ringing("a"))
    async with served.client.get(EVENTS_PATH) as stream:
        assert stream.content_type == "text/event-stream"
        event_id, kind, data = await next_event(stream)
        assert (event_id, kind) == ("e1-1", "snapshot")
        assert set(data["board"]["calls"]) == {"a"}
        assert data["as_of_ms"] == NOW
        served.live.view.apply(*ringing("b"))
        served.board.refresh()
        event_id, kind, data = await next_event(stream)
        assert (event_id, kind) == ("e1-2", "patch")
        assert set(data["patch"]["calls"]["set"]) == {"b"}
        assert "tiles" in data["patch"]  # the centre's tile counts it ringing
    # Away: call a ends. Back with the last id: the missed patch, not a snapshot.
    served.live.view.apply(b"a", None)
    served.board.refresh()
    async with served.client.get(EVENTS_PATH, headers={"Last-Event-ID": "e1-2"}) as stream:
        event_id, kind, data = await next_event(stream)
        assert (event_id, kind) == ("e1-3", "patch")
        assert data["patch"]["calls"] == {"set": {}, "del": ["a"]}
    for unknown in ("e0-2", "e1-99", "junk"):
        async with served.client.get(EVENTS_PATH, headers={"Last-Event-ID": unknown}) as stream:
            event_id, kind, data = await next_event(stream)
            assert (event_id, kind) == ("e1-3", "snapshot")
            assert set(data["board"]["calls"]) == {"b"}


async def test_a_change_is_pushed_by_the_running_board(served: Board) -> None:
    task = asyncio.create_task(served.board.run())
    try:
        async with served.client.get(EVENTS_PATH) as stream:
            await next_event(stream)
            served.live.view.apply(*ringing("c"))
            served.board.changed()
            _, kind, data = await next_event(stream)
            assert kind == "patch"
            assert set(data["patch"]["calls"]["set"]) == {"c"}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_nobody_watching_the_metrics_view_still_forgets_what_ended() -> None:
    windows = Held(BoardWindows())
    ended = WindowMetrics(
        dimension="all", value="all", window="1h", window_start_ms=0, window_end_ms=3_600_000,
        revision=1, updated_at_ms=0,
    )  # fmt: skip
    windows.view.apply(ended.key().encode(), msgspec.json.encode(ended))
    board = Wallboard(Held(LiveView()), windows, MetricSettings(), clock_ms=lambda: NOW)
    task = asyncio.create_task(board.run())
    try:
        await asyncio.sleep(0)  # the task runs up to its first wait: it pruned before it
        assert len(windows.view) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_client_too_far_behind_is_ended_with_nothing_skipped(served: Board) -> None:
    """Its queue emptied, not its oldest event dropped: a gap would corrupt its board, while
    the end makes it resume from the last event it was sent."""
    with served.board.watching() as queue:
        for i in range(QUEUE_EVENTS + 1):
            served.live.view.apply(*ringing(f"c{i}"))
            served.board.refresh()
        assert queue.qsize() == 1
        assert queue.get_nowait() is None


async def test_every_stream_ends_when_the_server_stops(served: Board) -> None:
    async with served.client.get(EVENTS_PATH) as stream:
        await next_event(stream)
        await served.board.close()
        assert await asyncio.wait_for(stream.content.read(), 5) == b""
    async with served.client.get(EVENTS_PATH) as late:  # closed: it ends at once
        assert b"snapshot" in await asyncio.wait_for(late.content.read(), 5)
