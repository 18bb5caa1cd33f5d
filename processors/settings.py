"""The worker's settings, read once from the environment when it starts."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yarl import URL

from callstream.processors.callmetrics.windows import WINDOW_MS, MetricSettings
from callstream.processors.callstate import FoldSettings
from callstream.settings import (
    DEFAULT_BOOTSTRAP,
    SettingsError,
    env_bootstrap,
    env_float,
    env_log_level,
    env_replication_factor,
)

log = logging.getLogger("callstream.processors")
STORES = {"rocksdb": "rocksdb://", "memory": "memory://"}


@dataclass(frozen=True)
class WorkerSettings:
    """Kafka, the table store, the fold's timers and the web server of one worker."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topic_prefix: str = ""
    app_id: str = "callstream-worker"
    store: str = "rocksdb://"
    data_dir: Path = Path(".cache/worker-data")
    replication_factor: int | None = None  # None: the cluster's brokers, 3 at most
    fold: FoldSettings = field(default_factory=FoldSettings)
    metrics: MetricSettings = field(default_factory=MetricSettings)
    timer_interval_s: float = 10.0
    # A worker that dies is noticed after this long; its partitions then move to the others.
    session_timeout_s: float = 10.0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # The URL the other workers reach this one's web server at (CALLSTREAM_WORKER_URL).
    advertised_url: str | None = None
    log_level: str = "INFO"

    @property
    def canonical_url(self) -> str:
        """The URL this worker advertises to the group: the query API sends it the requests
        for the keys it owns. Default ``http://<web host>:<web port>``, which only serves when
        the web host is an address the other workers can reach (not 0.0.0.0)."""
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def full_scan_interval_s(self) -> float:
        """How often the timer reads every stored state, not only the open calls': to find
        completed calls past their retention, a tenth of it late at most, an hour at most."""
        return max(self.timer_interval_s, min(3600.0, self.fold.retention_ms / 10_000))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        env = os.environ if environ is None else environ
        store_name = env.get("CALLSTREAM_STORE", "").strip().lower() or "rocksdb"
        if store_name not in STORES:
            raise SettingsError(f"CALLSTREAM_STORE={store_name!r}: use rocksdb or memory")
        prefix = env.get("CALLSTREAM_TOPIC_PREFIX", "").strip()
        settings = cls(
            bootstrap_servers=env_bootstrap(env),
            topic_prefix=prefix,
            app_id=env.get("CALLSTREAM_APP_ID", "").strip() or f"{prefix}callstream-worker",
            store=STORES[store_name],
            data_dir=Path(env.get("CALLSTREAM_DATA_DIR", "").strip() or ".cache/worker-data"),
            replication_factor=env_replication_factor(env),
            fold=FoldSettings(
                cdr_timeout_ms=int(env_float(env, "CALLSTREAM_CDR_TIMEOUT_S", 900) * 1000),
                stale_timeout_ms=int(env_float(env, "CALLSTREAM_STALE_TIMEOUT_S", 14400) * 1000),
                retention_ms=int(env_float(env, "CALLSTREAM_RETENTION_S", 7 * 86400) * 1000),
            ),
            metrics=metric_settings(env),
            timer_interval_s=env_float(env, "CALLSTREAM_TIMER_INTERVAL_S", 10.0),
            session_timeout_s=env_float(env, "CALLSTREAM_SESSION_TIMEOUT_S", 10.0),
            advertised_url=_env_url(env, "CALLSTREAM_WORKER_URL"),
            log_level=env_log_level(env),
        )
        safe_ms = settings.metrics.open_for_ms()
        if settings.fold.retention_ms < safe_ms:
            log.warning(
                "CALLSTREAM_RETENTION_S=%g is shorter than the longest window and its grace "
                "(%g s): a CDR re-sent after its call left the table would count it twice",
                settings.fold.retention_ms / 1000,
                safe_ms / 1000,
            )
        return settings


def metric_settings(env: Mapping[str, str]) -> MetricSettings:
    """The metrics' windows, time zone, service-level threshold and graces (docs/metrics.md)."""
    defaults = MetricSettings()
    raw_windows = env.get("CALLSTREAM_METRICS_WINDOWS", "").replace(" ", "")
    windows = tuple(raw_windows.split(",")) if raw_windows else defaults.windows
    unknown = [window for window in windows if window not in WINDOW_MS]
    if unknown:
        raise SettingsError(
            f"CALLSTREAM_METRICS_WINDOWS: {', '.join(unknown)}: use some of {', '.join(WINDOW_MS)}"
        )
    zone = env.get("CALLSTREAM_TIME_ZONE", "").strip() or defaults.zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise SettingsError(f"CALLSTREAM_TIME_ZONE={zone!r}: not an IANA time zone") from error
    grace_s = env_float(env, "CALLSTREAM_METRICS_GRACE_S", defaults.grace_ms / 1000)
    day_grace_s = env_float(env, "CALLSTREAM_METRICS_DAY_GRACE_S", defaults.day_grace_ms / 1000)
    service_level_s = env_float(env, "CALLSTREAM_SERVICE_LEVEL_S", defaults.service_level_s)
    retention_s = env_float(env, "CALLSTREAM_METRICS_RETENTION_S", defaults.retention_ms / 1000)
    for name, value in (
        ("CALLSTREAM_METRICS_GRACE_S", grace_s),
        ("CALLSTREAM_METRICS_DAY_GRACE_S", day_grace_s),
        ("CALLSTREAM_SERVICE_LEVEL_S", service_level_s),
        ("CALLSTREAM_METRICS_RETENTION_S", retention_s),
    ):
        if value < 0:
            raise SettingsError(f"{name}={value}: must not be negative")
    return MetricSettings(
        windows=windows,  # type: ignore[arg-type]  # checked above
        zone=zone,
        service_level_s=service_level_s,
        grace_ms=int(grace_s * 1000),
        day_grace_ms=int(day_grace_s * 1000),
        retention_ms=int(retention_s * 1000),
    )


def _env_url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL with a host, or None when unset."""
    text = env.get(name, "").strip()
    if not text:
        return None
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host or url.path not in ("", "/"):
        raise SettingsError(f"{name}={text!r}: use http://host:port (no path)")
    return str(url.origin())
