"""The ingress's settings, read once from the environment when it starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from callstream.ingest.auth import IPNetwork, TokenSet, parse_networks, parse_signing_secret
from callstream.settings import (
    DEFAULT_BOOTSTRAP,
    SettingsError,
    env_bool,
    env_bootstrap,
    env_float,
    env_int,
    env_log_level,
    env_replication_factor,
)


@dataclass(frozen=True)
class IngressSettings:
    """Everything the ingress needs; secrets are kept only in derived form (digests, keys)."""

    tokens: TokenSet
    signing_key: bytes | None = field(default=None, repr=False)
    allowed_networks: tuple[IPNetwork, ...] = ()
    trusted_proxies: tuple[IPNetwork, ...] = ()
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topic_prefix: str = ""
    max_body_bytes: int = 64 * 1024
    send_timeout_s: float = 5.0
    linger_ms: int = 0
    ready_window_s: float = 10.0
    log_requests: bool = False
    log_level: str = "INFO"
    replication_factor: int | None = None  # None: the cluster's brokers, 3 at most
    header_timeout_s: float = 10.0  # a request's line and headers, from its first byte
    body_timeout_s: float = 30.0  # the whole body, once the headers are in
    keepalive_timeout_s: float = 75.0  # an idle keep-alive connection between requests
    write_timeout_s: float = 30.0  # a response stalled on a client that does not read it
    max_connections: int = 1000  # open connections per process; more are refused (503)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngressSettings:
        env = os.environ if environ is None else environ
        secret = env.get("CALLSTREAM_WEBHOOK_SIGNING_SECRET", "").strip()
        settings = cls(
            tokens=TokenSet.parse(env.get("CALLSTREAM_WEBHOOK_TOKENS", "")),
            signing_key=parse_signing_secret(secret) if secret else None,
            allowed_networks=parse_networks(
                env.get("CALLSTREAM_ALLOWED_CIDRS", ""), "CALLSTREAM_ALLOWED_CIDRS"
            ),
            trusted_proxies=parse_networks(
                env.get("CALLSTREAM_TRUSTED_PROXIES", ""), "CALLSTREAM_TRUSTED_PROXIES"
            ),
            bootstrap_servers=env_bootstrap(env),
            topic_prefix=env.get("CALLSTREAM_TOPIC_PREFIX", "").strip(),
            max_body_bytes=env_int(env, "CALLSTREAM_MAX_BODY_BYTES", 64 * 1024),
            send_timeout_s=env_float(env, "CALLSTREAM_SEND_TIMEOUT", 5.0),
            linger_ms=env_int(env, "CALLSTREAM_INGEST_LINGER_MS", 0),
            log_requests=env_bool(env, "CALLSTREAM_LOG_REQUESTS", default=False),
            log_level=env_log_level(env),
            replication_factor=env_replication_factor(env),
            header_timeout_s=env_float(env, "CALLSTREAM_HEADER_TIMEOUT", 10.0),
            body_timeout_s=env_float(env, "CALLSTREAM_BODY_TIMEOUT", 30.0),
            keepalive_timeout_s=env_float(env, "CALLSTREAM_KEEPALIVE_TIMEOUT", 75.0),
            write_timeout_s=env_float(env, "CALLSTREAM_WRITE_TIMEOUT", 30.0),
            max_connections=env_int(env, "CALLSTREAM_MAX_CONNECTIONS", 1000),
        )
        if settings.max_body_bytes < 1024:
            raise SettingsError("CALLSTREAM_MAX_BODY_BYTES must be at least 1024")
        for name, seconds in (
            ("CALLSTREAM_SEND_TIMEOUT", settings.send_timeout_s),
            ("CALLSTREAM_HEADER_TIMEOUT", settings.header_timeout_s),
            ("CALLSTREAM_BODY_TIMEOUT", settings.body_timeout_s),
            ("CALLSTREAM_KEEPALIVE_TIMEOUT", settings.keepalive_timeout_s),
            ("CALLSTREAM_WRITE_TIMEOUT", settings.write_timeout_s),
        ):
            if seconds <= 0:
                raise SettingsError(f"{name} must be positive")
        if settings.max_connections < 1:
            raise SettingsError("CALLSTREAM_MAX_CONNECTIONS must be at least 1")
        return settings
