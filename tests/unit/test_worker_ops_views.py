"""The worker's liveness, readiness and Prometheus routes, served by faust's own web stack on
an app that has not joined any group (no broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import faust
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST

from callstream.processors.app import create_worker_app
from callstream.processors.settings import WorkerSettings


@asynccontextmanager
async def served(tmp_path: Path) -> AsyncIterator[tuple[faust.App, TestClient]]:
    app = create_worker_app(WorkerSettings(store="memory://", data_dir=tmp_path))
    # web_app: the aiohttp Application of faust's aiohttp driver (the base Web type lacks it)
    async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
        yield app, client


async def test_alive_while_recovering_and_ready_only_once_recovered(tmp_path: Path) -> None:
    async with served(tmp_path) as (app, client):
        alive = await client.get("/healthz")
        assert (alive.status, await alive.json()) == (200, {"status": "ok", "service": "worker"})
        starting = await client.get("/readyz")
        assert starting.status == 503
        assert (await starting.json())["error"] == "not_ready"
        assert starting.headers["Retry-After"] == "1"

        app.tables.recovery.completed.set()  # type: ignore[attr-defined]  # faust, recovered
        ready = await client.get("/readyz")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})
        app.rebalancing = True
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200


async def test_metrics_are_served_in_prometheus_text_format(tmp_path: Path) -> None:
    async with served(tmp_path) as (_, client):
        response = await client.get("/metrics")
        body = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert 'callstream_worker_table_rows{table="call-state"} 0.0' in body
    assert "callstream_worker_consumer_lag" in body  # declared; no partition until ready


async def test_faust_s_table_and_router_pages_are_not_served(tmp_path: Path) -> None:
    """They would show the tables' contents (customers' numbers) to anyone on the port."""
    app = create_worker_app(WorkerSettings(store="memory://", data_dir=tmp_path))
    app.web.init_server()  # what faust's web service does as it starts: its blueprints
    async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
        assert (await client.get("/healthz")).status == 200  # served as it would be
        for path in ("/table/call-state/", "/router/", "/router/call-state/"):
            response = await client.get(path)
            assert response.status == 404, path
