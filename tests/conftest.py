"""Shared fixtures: one Kafka broker for the whole session, unique topics per test, and a
three-node cluster for the tests that ask for one.

The broker comes from, in order: ``KAFKA_BOOTSTRAP_SERVERS``; testcontainers' Kafka (the
official apache/kafka image at the pinned version) when a Docker engine answers; else the
project's own launcher on a free port with a temporary data dir, stopped at the end. The
cluster is always the project's own (``callstream kafka start --nodes 3``): its tests kill its
processes.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import settings as hypothesis_settings

from callstream.kafka import broker
from callstream.kafka.fetch import fetch
from callstream.kafka.local import temporary_broker
from callstream.kafka.release import KafkaRelease
from callstream.settings import KafkaSettings
from tests.cluster_support import LocalCluster, local_cluster

REPO_ROOT = Path(__file__).resolve().parents[1]

# CI replays the same generated examples every run, so a red CI always means a change broke
# something; developers' runs keep exploring new examples (and hypothesis remembers failures).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak (marker ``soak``, 30 minutes) runs only when ``-m`` names it (`make soak`): a
    plain ``pytest tests/reliability`` leaves it out."""
    if "soak" in (config.option.markexpr or ""):
        return
    soaks = [item for item in items if item.get_closest_marker("soak")]
    if soaks:
        config.hook.pytest_deselected(items=soaks)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


@pytest.fixture(scope="session")
def kafka_settings() -> KafkaSettings:
    return KafkaSettings.from_env()


@pytest.fixture(scope="session")
def kafka_release(kafka_settings: KafkaSettings) -> KafkaRelease:
    """The pinned release, its jars fetched (a no-op when cached)."""
    fetch(kafka_settings.release, mvn=kafka_settings.mvn)
    return kafka_settings.release


def _docker_engine_answers() -> bool:
    try:
        import docker  # noqa: PLC0415 - only where testcontainers may be used

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _container_broker(version: str) -> Iterator[str]:
    """The official image in KRaft mode, advertised on a host port fixed before it starts."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415

    port = broker.free_port()
    container = (
        DockerContainer(f"apache/kafka:{version}")
        .with_bind_ports(port, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", f"PLAINTEXT://:{port},CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def kafka_bootstrap(
    kafka_settings: KafkaSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``host:port`` of a real Kafka broker for the whole test session."""
    if kafka_settings.bootstrap_servers:
        yield kafka_settings.bootstrap_servers
        return
    release = kafka_settings.release
    if _docker_engine_answers():
        yield from _container_broker(release.version)
        return
    with temporary_broker(kafka_settings, tmp_path_factory.mktemp("kafka-session")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_cluster(
    kafka_release: KafkaRelease, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """A local three-node KRaft cluster (replication factor 3, min.insync.replicas 2), started
    by the first test that asks for it and stopped at the end of the session. A test that stops
    or kills a node starts it again (``kafka_cluster.start()``) before it ends."""
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    yield from local_cluster(tmp_path_factory.mktemp("kafka-cluster"), env)


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(kafka_bootstrap: str) -> AsyncIterator[TopicFactory]:
    """Create topics with unique names: ``await new_topic(partitions=3)`` -> the name."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    created: list[str] = []

    async def create(partitions: int = 1, prefix: str = "test", **config: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=config)]
        )
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
def unique_group() -> str:
    return f"test-group-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The environment for running the ``callstream`` command in a subprocess."""
    env = dict(os.environ)
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env
