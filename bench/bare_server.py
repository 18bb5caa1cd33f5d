"""The baseline for bench/ingest.py: a bare aiohttp handler that reads the body, parses it with
orjson and answers a small JSON, without Kafka. Same server settings as the ingress.

    python bench/bare_server.py PORT
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    document = orjson.loads(await request.read())
    return web.Response(
        body=orjson.dumps({"accepted": True, "call_id": document.get("transaction_id")}),
        content_type="application/json",
    )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application()
    app.router.add_post("/webhooks/omicall/{token}", handle)
    app.router.add_post("/webhooks/omicall", handle)  # the token in a header (bench/pipeline.py)
    app.router.add_get("/healthz", healthz)  # readiness for the bench, off the measured path
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
