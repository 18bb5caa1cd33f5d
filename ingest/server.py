"""Run the ingress: settings from the environment, JSON logs, graceful shutdown on SIGTERM.

``CALLSTREAM_INGEST_PROCESSES`` > 1 runs that many processes on one port (SO_REUSEPORT; the
kernel spreads connections), each with its own producer: the handler is CPU-bound, so this is
how the ingress uses more than one core.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

from aiohttp import web

from callstream.ingest.app import create_app
from callstream.ingest.settings import IngressSettings
from callstream.logs import configure_json_logging
from callstream.settings import SettingsError, env_int

# On SIGTERM aiohttp stops accepting, lets in-flight requests finish for up to this long, then
# runs the cleanup that flushes and closes the producer: nothing acknowledged is lost.
SHUTDOWN_GRACE_S = 15.0


def _serve_one(host: str, port: int, reuse_port: bool) -> None:
    settings = IngressSettings.from_env()
    configure_json_logging(settings.log_level)
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        backlog=1024,
        reuse_port=reuse_port or None,
    )


def serve_ingress(host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM. Raises AuthConfigError/SettingsError before listening when the
    configuration is unusable (no token, bad CIDR, ...)."""
    IngressSettings.from_env()  # fail here, once, before any process starts
    processes = env_int(os.environ, "CALLSTREAM_INGEST_PROCESSES", 1)
    if processes < 1:
        raise SettingsError("CALLSTREAM_INGEST_PROCESSES must be at least 1")
    context = multiprocessing.get_context("spawn")
    others = [
        context.Process(target=_serve_one, args=(host, port, True), daemon=False)
        for _ in range(processes - 1)
    ]
    for process in others:
        process.start()
    try:
        _serve_one(host, port, reuse_port=processes > 1)
    finally:
        for process in others:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in others:
            process.join(SHUTDOWN_GRACE_S + 5)
