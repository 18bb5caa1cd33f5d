"""Pieces the callstream web servers share: the liveness route, and errors as JSON.

Every error either service answers is ``{"error": "<code>", "detail": "..."}`` (the contract,
docs/schemas.md): a handler raises :class:`Refusal`, aiohttp's own refusals (no route, wrong
method) become the same shape, and nothing unexpected reaches a client as a traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

log = logging.getLogger("callstream.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """A client-visible refusal: status, stable error code, and a detail safe to show."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.close = close  # the connection cannot carry another request


def error_response(refusal: Refusal) -> web.Response:
    response = web.Response(
        status=refusal.status,
        body=orjson.dumps({"error": refusal.code, "detail": refusal.detail}),
        content_type="application/json",
        headers=refusal.headers,
    )
    if refusal.close:
        response.force_close()
    return response


def http_error_refusal(http_error: web.HTTPException) -> Refusal:
    """aiohttp's own refusal (404 no route, 405 wrong method, ...) as ours: its reason as the
    code, its headers (``Allow`` on a 405) but not its text/plain Content-Type."""
    code = re.sub(r"\W+", "_", (http_error.reason or "error").lower()).strip("_")
    headers = {k: v for k, v in http_error.headers.items() if k.lower() != "content-type"}
    return Refusal(http_error.status, code, http_error.reason or "", headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every refusal and failure as a JSON error body; never a traceback to clients."""
    try:
        return await handler(request)
    except Refusal as refusal:
        return error_response(refusal)
    except web.HTTPException as http_error:
        if http_error.status < 400:  # a redirect is an answer, not an error
            raise
        return error_response(http_error_refusal(http_error))
    except Exception:
        log.exception("unexpected error", extra={"path": request.path})
        return error_response(Refusal(500, "internal", "unexpected server error"))


def add_healthz(app: web.Application, service: str) -> None:
    """``GET /healthz``: the process is alive and its event loop answers."""
    body = {"status": "ok", "service": service}

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get("/healthz", healthz)
