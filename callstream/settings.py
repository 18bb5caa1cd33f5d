"""Settings read from the environment once, at the command's start (never at import time).

Each service has its own small frozen settings object; README's configuration table lists
every variable.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from callstream.kafka.broker import JvmSettings
from callstream.kafka.release import KafkaRelease, pinned_release, project_root


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


# The services' default Kafka: the local broker of `callstream kafka start` on its default port.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def env_bootstrap(env: Mapping[str, str]) -> str:
    """``KAFKA_BOOTSTRAP_SERVERS``, or the local broker."""
    return env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or DEFAULT_BOOTSTRAP


def env_log_level(env: Mapping[str, str]) -> str:
    """``CALLSTREAM_LOG_LEVEL`` in upper case, ``INFO`` by default."""
    return env.get("CALLSTREAM_LOG_LEVEL", "").strip().upper() or "INFO"


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    """An integer variable; empty or unset gives ``default``."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None


def env_replication_factor(env: Mapping[str, str]) -> int | None:
    """``CALLSTREAM_REPLICATION_FACTOR``: the copies of the topics the services create; unset
    (None): as many as the cluster has brokers, three at most (callstream/kafka/admin.py)."""
    if not env.get("CALLSTREAM_REPLICATION_FACTOR", "").strip():
        return None
    factor = env_int(env, "CALLSTREAM_REPLICATION_FACTOR", 1)
    if factor < 1:
        raise SettingsError(f"CALLSTREAM_REPLICATION_FACTOR={factor} must be at least 1")
    return factor


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    """A finite number variable; empty or unset gives ``default``. ``nan`` and ``inf`` parse as
    floats but are no setting: NaN passes every ``<= 0`` check, and as a timer's delay it breaks
    the order of every timer of the event loop."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name}={raw!r} is not a finite number")
    return value


def env_bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); empty or unset gives ``default``."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def env_kafka_data_dir(env: Mapping[str, str]) -> Path:
    """The local broker's data dir: ``CALLSTREAM_KAFKA_DATA_DIR``, else ``.cache/kafka-data``
    in the checkout."""
    data_dir = env.get("CALLSTREAM_KAFKA_DATA_DIR")
    return Path(data_dir) if data_dir else project_root(dict(env)) / ".cache" / "kafka-data"


@dataclass(frozen=True)
class KafkaSettings:
    """Where Kafka is: an existing cluster, or the local broker this project runs."""

    bootstrap_servers: str | None
    release: KafkaRelease
    data_dir: Path
    port: int
    jvm: JvmSettings
    start_timeout: float
    mvn: str

    @property
    def local_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSettings:
        env = os.environ if environ is None else environ
        root = project_root(dict(env))
        cache = env.get("CALLSTREAM_KAFKA_CACHE_DIR")
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None,
            release=pinned_release(root, Path(cache) if cache else None),
            data_dir=env_kafka_data_dir(env),
            port=env_int(env, "CALLSTREAM_KAFKA_PORT", 9092),
            jvm=JvmSettings(
                heap=env.get("CALLSTREAM_KAFKA_HEAP", "").strip() or None,
                extra=tuple(shlex.split(env.get("CALLSTREAM_KAFKA_JAVA_OPTS", ""))),
            ),
            start_timeout=env_float(env, "CALLSTREAM_KAFKA_START_TIMEOUT", 60.0),
            mvn=env.get("CALLSTREAM_MVN", "").strip() or "mvn",
        )
