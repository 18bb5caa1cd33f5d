"""Pieces the callstream web servers share: the liveness route."""

from __future__ import annotations

from aiohttp import web


def add_healthz(app: web.Application, service: str) -> None:
    """``GET /healthz``: the process is alive and its event loop answers."""
    body = {"status": "ok", "service": service}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get("/healthz", healthz)
