"""Pieces every callstream web server shares: the liveness route and how it is served."""

from __future__ import annotations

from aiohttp import web


def add_healthz(app: web.Application, service: str) -> None:
    """``GET /healthz``: the process is alive and its event loop answers."""
    body = {"status": "ok", "service": service}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get("/healthz", healthz)


def serve(app: web.Application, host: str, port: int) -> None:
    """Run ``app`` until SIGINT/SIGTERM; no access log (per-request lines are opt-in)."""
    web.run_app(app, host=host, port=port, access_log=None, print=None)
