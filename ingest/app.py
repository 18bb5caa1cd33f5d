"""The ingress web application.

For now it only answers ``GET /healthz``: authentication, validation and publishing arrive with
the ingress issue (see README, "Status").
"""

from __future__ import annotations

from aiohttp import web

from callstream.webapp import add_healthz


def create_app() -> web.Application:
    app = web.Application()
    add_healthz(app, "ingress")
    return app
