"""`callstream up` (what `make run` starts): broker, ingress and worker; Ctrl-C stops all three."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from callstream.health import wait_http_ok
from callstream.kafka.broker import free_port, port_in_use
from callstream.kafka.release import KafkaRelease
from tests.integration.cli_helpers import callstream


def test_up_starts_everything_and_ctrl_c_stops_everything(
    kafka_release: KafkaRelease, cli_env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "kafka-data"
    kafka_port, ingest_port, worker_port = free_port(), free_port(), free_port()
    command = [sys.executable, "-m", "callstream", "up", "--data-dir", str(data_dir)]
    command += ["--kafka-port", str(kafka_port), "--ingest-port", str(ingest_port)]
    command += ["--worker-port", str(worker_port)]
    up = subprocess.Popen(
        command, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert wait_http_ok(f"http://127.0.0.1:{ingest_port}/healthz", deadline_s=90)
        assert wait_http_ok(f"http://127.0.0.1:{worker_port}/readyz", deadline_s=30)
        status = callstream("kafka", "status", "--data-dir", str(data_dir), env=cli_env)
        assert status.code == 0
        assert f"running at 127.0.0.1:{kafka_port}" in status.stdout
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        output, _ = up.communicate(timeout=90)
    assert up.returncode == 0, output
    assert "callstream is up" in output
    assert "stopped" in output.splitlines()[-1]
    after = callstream("kafka", "status", "--data-dir", str(data_dir), env=cli_env)
    assert after.code == 3
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        port_in_use(port) for port in (kafka_port, ingest_port, worker_port)
    ):
        time.sleep(0.1)
    assert not any(port_in_use(port) for port in (kafka_port, ingest_port, worker_port))
