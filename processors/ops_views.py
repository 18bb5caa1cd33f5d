"""The worker's operational routes on faust's web server: liveness, readiness, Prometheus.

``GET /healthz`` answers 200 while the process runs, table recovery included: a supervisor that
restarted a worker still recovering would never see it finish. ``GET /readyz`` answers 503 until
the worker has joined its group and recovered its tables, and during a rebalance: what waits
for the worker to serve (``callstream up``, compose, the tests) asks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST

from callstream.processors.private_api import tables_recovered

RETRY_AFTER_S = "1"


def worker_ready(app: faust.App) -> bool:
    """Joined its group and its tables recovered, and no rebalance running."""
    return tables_recovered(app) and not app.rebalancing


def add_ops_views(
    app: faust.App, ready: Callable[[], bool], scrape: Callable[[], Awaitable[bytes]]
) -> None:
    """Add ``/healthz``, ``/readyz`` and ``/metrics`` (``scrape``: the exposition, computed
    now) to ``app``'s web server."""

    @app.page("/healthz")
    async def healthz(view: Any, _request: Any) -> Any:
        return view.json({"status": "ok", "service": "worker"})

    @app.page("/readyz")
    async def readyz(view: Any, _request: Any) -> Any:
        if ready():
            return view.json({"status": "ready"})
        detail = "joining the consumer group or recovering tables"
        headers = {"Retry-After": RETRY_AFTER_S}
        return view.json({"error": "not_ready", "detail": detail}, status=503, headers=headers)

    @app.page("/metrics")
    async def metrics(view: Any, _request: Any) -> Any:
        # In the header: aiohttp refuses a content_type argument with a charset.
        return view.bytes(await scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})
