"""The wallboard's board and its watchers (processors/board_stream.py serves them).

While a client watches, :class:`Wallboard` rebuilds the board (processors/board.py) when a
feed changed, at most every ``MIN_INTERVAL_S``, and every ``TICK_S`` for the clock (the hour,
the chart's minutes); it numbers each board and pushes the patch to every client's queue. A
client starts with a snapshot or, coming back with ``Last-Event-ID``, with the patches it
missed. Nobody watching, it only keeps the metrics view from growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson
from aiohttp import web

from callstream.processors.board import CHART_MINUTES, Board, BoardHistory, Patch, build_board
from callstream.processors.board_windows import BoardWindows
from callstream.processors.callmetrics.windows import MINUTE_MS, MetricSettings, window_bounds
from callstream.processors.live_view import LiveView

TICK_S = 5.0
MIN_INTERVAL_S = 0.5
PRUNE_S = 60.0  # nobody watching: how often the metrics view forgets the windows that ended
QUEUE_EVENTS = 64  # a client further behind is dropped; it reconnects and resumes
# Calls may start a little before the worker's clock says (the provider's clock): read the
# metrics from a little before the oldest window the board shows.
CLOCK_MARGIN_MS = 5 * MINUTE_MS
V_co = TypeVar("V_co", covariant=True)


class Feed(Protocol, Generic[V_co]):
    """What the board reads of a feed (processors/topic_feed.py's ``TopicFeed``)."""

    @property
    def ready(self) -> bool: ...

    @property
    def view(self) -> V_co: ...


def wall_clock_ms() -> int:
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
        clock_ms: Callable[[], int] = wall_clock_ms,
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
