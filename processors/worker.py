"""The worker process.

For now it only serves ``GET /healthz`` on its web port: the Faust agents and the query API
arrive with the processor issues (see README, "Status").
"""

from __future__ import annotations

from aiohttp import web

from callstream.webapp import add_healthz


def create_app() -> web.Application:
    app = web.Application()
    add_healthz(app, "worker")
    return app
