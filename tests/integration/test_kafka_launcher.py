"""`callstream kafka start/stop/status` on a data dir of its own, as a user runs them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from callstream.kafka import broker
from callstream.kafka.release import KafkaRelease
from tests.integration.cli_helpers import callstream
from tests.kafka_support import read_topic


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    """Create ``topic`` (the broker creates none on first use) and write ``value`` to it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), timeout=30)
    finally:
        await producer.stop()


@pytest.fixture
def data_dir(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Path]:
    path = tmp_path / "kafka-data"
    yield path
    callstream("kafka", "stop", "--data-dir", str(path), env=cli_env)


async def test_start_twice_then_stop_and_start_keeps_the_data(
    kafka_release: KafkaRelease, data_dir: Path, cli_env: dict[str, str]
) -> None:
    port = str(broker.free_port())
    first = callstream("kafka", "start", "--port", port, "--data-dir", str(data_dir), env=cli_env)
    assert first.code == 0, first.stderr
    bootstrap = first.stdout.strip()
    assert bootstrap == f"127.0.0.1:{port}"
    assert "formatting KRaft storage" in first.stderr

    second = callstream("kafka", "start", "--port", port, "--data-dir", str(data_dir), env=cli_env)
    assert second.code == 0
    assert "already runs" in second.stderr
    assert second.stdout.strip() == bootstrap

    status = callstream("kafka", "status", "--data-dir", str(data_dir), env=cli_env)
    assert status.code == 0
    assert f"running at {bootstrap}" in status.stdout

    await _produce(bootstrap, "kept-across-restarts", b"written before the stop")
    stopped = callstream("kafka", "stop", "--data-dir", str(data_dir), env=cli_env)
    assert stopped.code == 0
    assert "stopped" in stopped.stderr
    after_stop = callstream("kafka", "status", "--data-dir", str(data_dir), env=cli_env)
    assert after_stop.code == 3
    assert "not running" in after_stop.stdout

    again = callstream("kafka", "start", "--port", port, "--data-dir", str(data_dir), env=cli_env)
    assert again.code == 0, again.stderr
    assert "formatting" not in again.stderr
    records = await read_topic(bootstrap, "kept-across-restarts", expect=1)
    assert [record.value for record in records] == [b"written before the stop"]


def test_stale_pid_file_is_reported_and_replaced(
    kafka_release: KafkaRelease, data_dir: Path, cli_env: dict[str, str]
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    data_dir.mkdir(parents=True)
    (data_dir / "kafka.pid").write_text(f"{gone.pid}\n")

    status = callstream("kafka", "status", "--data-dir", str(data_dir), env=cli_env)
    assert status.code == 3
    assert f"stale pid file (pid {gone.pid} is gone)" in status.stdout

    port = str(broker.free_port())
    started = callstream("kafka", "start", "--port", port, "--data-dir", str(data_dir), env=cli_env)
    assert started.code == 0, started.stderr
    assert "removing a stale pid file" in started.stderr
    assert int((data_dir / "kafka.pid").read_text()) != gone.pid


def test_port_in_use_fails_fast_with_a_clear_message(
    kafka_release: KafkaRelease, data_dir: Path, cli_env: dict[str, str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        began = time.monotonic()
        run = callstream(
            "kafka", "start", "--port", str(port), "--data-dir", str(data_dir), env=cli_env
        )
        elapsed = time.monotonic() - began
    assert run.code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in run.stderr
    assert elapsed < 20, "a port in use must not wait for a broker"
    assert not (data_dir / "kafka.pid").exists()


def test_stop_without_a_broker_says_so(data_dir: Path, cli_env: dict[str, str]) -> None:
    run = callstream("kafka", "stop", "--data-dir", str(data_dir), env=cli_env)
    assert run.code == 0
    assert "no broker runs" in run.stderr
