"""Feeds a :class:`LiveView` from ``callstream.live-calls``: the whole compacted topic, from
its earliest offset, on every worker (processors/topic_feed.py), so each answers
``GET /calls/live`` for the whole call centre."""

from __future__ import annotations

from collections.abc import Callable

from callstream.processors.live_view import LiveView
from callstream.processors.topic_feed import RETRY_S, TopicFeed, ignore_change


class LiveFeed(TopicFeed[LiveView]):
    """The worker's view of the calls in progress; run :meth:`run` as a task while it serves."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        on_change: Callable[[], None] = ignore_change,
        retry_s: float = RETRY_S,
    ) -> None:
        super().__init__(bootstrap_servers, topic, LiveView(), on_change=on_change, retry_s=retry_s)
