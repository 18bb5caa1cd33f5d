"""`callstream up` gives up on a service at once when its process has exited."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from callstream import up
from callstream.health import wait_http_ok


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_service_that_exited_is_reported_at_once_with_its_code() -> None:
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait(30)
    service = up.Service("ingress", up.Endpoint("127.0.0.1", _closed_port()), exited)
    said: list[str] = []
    began = time.monotonic()
    assert not up._healthy(service, said.append)
    assert time.monotonic() - began < 5  # not the start timeout
    assert up.SERVICE_START_TIMEOUT > 5
    assert said == ["the ingress exited with code 3 before it was healthy"]


def test_waiting_for_health_ends_when_the_server_is_gone() -> None:
    began = time.monotonic()
    url = f"http://127.0.0.1:{_closed_port()}/healthz"
    assert not wait_http_ok(url, deadline_s=60, alive=lambda: False)
    assert time.monotonic() - began < 5
