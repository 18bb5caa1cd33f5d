"""Run the ingress: settings from the environment, JSON logs, graceful shutdown on SIGTERM;
``CALLSTREAM_INGEST_PROCESSES`` > 1 runs that many processes on one port (ingest/processes.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from callstream.ingest.app import METRICS, create_app
from callstream.ingest.connections import ConnectionGate
from callstream.ingest.processes import become_supervisor
from callstream.ingest.settings import IngressSettings
from callstream.logs import configure_json_logging
from callstream.settings import SettingsError, env_int

# On SIGTERM the ingress stops accepting, lets in-flight requests finish for up to this long,
# then runs the cleanup that flushes and closes the producer: nothing acknowledged is lost.
SHUTDOWN_GRACE_S = 15.0
LISTEN_BACKLOG = 1024


@asynccontextmanager
async def listening(
    app: web.Application,
    settings: IngressSettings,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
) -> AsyncIterator[int]:
    """Serve ``app`` on ``host:port`` for the block (it gets the bound port), then shut down as
    ``web.run_app`` does: stop accepting, close idle connections, let in-flight requests finish
    (up to SHUTDOWN_GRACE_S), run the app's cleanup. Connections pass the ConnectionGate
    (connection bound, header deadline); aiohttp closes idle keep-alive ones."""
    gate = ConnectionGate(
        app[METRICS],
        max_connections=settings.max_connections,
        header_timeout_s=settings.header_timeout_s,
        write_timeout_s=settings.write_timeout_s,
    )
    app.middlewares.insert(0, gate.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        keepalive_timeout=settings.keepalive_timeout_s,
        shutdown_timeout=SHUTDOWN_GRACE_S,
    )
    await runner.setup()
    try:
        if runner.server is None:
            raise RuntimeError("AppRunner.setup() made no server")
        server = await asyncio.get_running_loop().create_server(
            gate.protocol_factory(runner.server),
            host,
            port,
            backlog=LISTEN_BACKLOG,
            reuse_port=reuse_port or None,
        )
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()
    finally:
        await runner.cleanup()


async def _serve_until_signal(settings: IngressSettings, host: str, port: int, reuse: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with listening(create_app(settings), settings, host, port, reuse_port=reuse):
        await stop.wait()


def serve(host: str, port: int, reuse_port: bool) -> None:
    """One serving process, until SIGINT/SIGTERM."""
    settings = IngressSettings.from_env()
    configure_json_logging(settings.log_level)
    asyncio.run(_serve_until_signal(settings, host, port, reuse_port))


def serve_ingress(host: str, port: int) -> int:
    """Run until SIGINT/SIGTERM; the exit code. Raises AuthConfigError/SettingsError before
    listening when the configuration is unusable (no token, bad CIDR, ...)."""
    IngressSettings.from_env()  # fail here, once, before any process starts
    processes = env_int(os.environ, "CALLSTREAM_INGEST_PROCESSES", 1)
    if processes < 1:
        raise SettingsError("CALLSTREAM_INGEST_PROCESSES must be at least 1")
    if processes == 1:
        serve(host, port, reuse_port=False)
    else:
        become_supervisor(host, port, processes)  # never returns
    return 0
