"""Run the ingress: settings from the environment, JSON logs, graceful shutdown on SIGTERM."""

from __future__ import annotations

from aiohttp import web

from callstream.ingest.app import create_app
from callstream.ingest.settings import IngressSettings
from callstream.logs import configure_json_logging

# On SIGTERM aiohttp stops accepting, lets in-flight requests finish for up to this long, then
# runs the cleanup that flushes and closes the producer: nothing acknowledged is lost.
SHUTDOWN_GRACE_S = 15.0


def serve_ingress(host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM. Raises AuthConfigError/SettingsError before listening when the
    configuration is unusable (no token, bad CIDR, ...)."""
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
    )
