"""`callstream up`: the broker (unless KAFKA_BOOTSTRAP_SERVERS names one), the ingress and the
worker in the foreground. Ctrl-C or SIGTERM stops them in order: ingress, worker, broker.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from callstream.health import wait_http_ok
from callstream.kafka import broker
from callstream.kafka.fetch import fetch
from callstream.progress import Progress
from callstream.settings import KafkaSettings

SERVICE_START_TIMEOUT = 60.0
SERVICE_STOP_GRACE = 20.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Service:
    name: str
    endpoint: Endpoint
    process: subprocess.Popen[bytes]


def dev_token_file(kafka_data_dir: Path) -> Path:
    """Where `up` keeps its local webhook token: beside the broker's data dir (by default
    ``.cache/webhook-token``); the traffic commands read it from there too."""
    return kafka_data_dir.parent / "webhook-token"


def ensure_dev_token(path: Path) -> str:
    """A local webhook token for `up` when CALLSTREAM_WEBHOOK_TOKENS is unset: made once, kept
    in a git-ignored file readable only by its owner, never printed."""
    if path.is_file() and len(token := path.read_text().strip()) >= 16:
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token


def _spawn(name: str, verb: list[str], endpoint: Endpoint, env: dict[str, str]) -> Service:
    command = [sys.executable, "-m", "callstream", *verb]
    command += ["--host" if name == "ingress" else "--web-host", endpoint.host]
    command += ["--port" if name == "ingress" else "--web-port", str(endpoint.port)]
    # A session of its own: the terminal's Ctrl-C reaches only us, and we stop it in order.
    process = subprocess.Popen(command, env=env, start_new_session=True)
    return Service(name, endpoint, process)


def _stop_service(service: Service, progress: Progress) -> None:
    if service.process.poll() is not None:
        return
    progress(f"stopping the {service.name} (pid {service.process.pid})")
    service.process.send_signal(signal.SIGTERM)
    try:
        service.process.wait(SERVICE_STOP_GRACE)
    except subprocess.TimeoutExpired:
        progress(f"the {service.name} did not stop within {SERVICE_STOP_GRACE:.0f} s: killing it")
        service.process.kill()
        service.process.wait()


def _healthy(service: Service, progress: Progress) -> bool:
    """Wait for ``service``'s /readyz (the ingress: connected to Kafka; the worker: joined
    its group, tables recovered); say why not when it does not answer, at once when its
    process has exited (a refusal to start, its reason on stderr above)."""
    process = service.process
    url = f"{service.endpoint.url}/readyz"
    if wait_http_ok(url, SERVICE_START_TIMEOUT, alive=lambda: process.poll() is None):
        return True
    code = process.poll()
    if code is not None:
        progress(f"the {service.name} exited with code {code} before it was healthy")
    else:
        progress(f"the {service.name} did not become ready at {url}")
    return False


def run_up(
    settings: KafkaSettings,
    ingress: Endpoint,
    worker: Endpoint,
    progress: Progress,
) -> int:
    """Run everything until a signal or until a service dies; returns the exit code."""
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        progress(f"received {signal.Signals(signum).name}: shutting down")
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started_broker = False
    services: list[Service] = []
    exit_code = 0
    try:
        bootstrap = settings.bootstrap_servers
        if bootstrap is None:
            fetch(settings.release, mvn=settings.mvn, progress=progress)
            try:
                current = broker.start(
                    settings.data_dir,
                    settings.release,
                    port=settings.port,
                    jvm=settings.jvm,
                    timeout=settings.start_timeout,
                    progress=progress,
                )
                started_broker = True
            except broker.AlreadyRunning as running:
                progress(f"using the broker that already runs at {running.status.bootstrap}")
                current = running.status
            bootstrap = current.bootstrap or settings.local_bootstrap
        progress(f"Kafka at {bootstrap}")
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        env.setdefault("CALLSTREAM_DATA_DIR", str(settings.data_dir.parent / "worker-data"))
        if not env.get("CALLSTREAM_WEBHOOK_TOKENS", "").strip():
            token_file = dev_token_file(settings.data_dir)
            env["CALLSTREAM_WEBHOOK_TOKENS"] = ensure_dev_token(token_file)
            progress(
                f"CALLSTREAM_WEBHOOK_TOKENS is unset: the ingress uses the token in {token_file}"
            )
        services = [
            _spawn("ingress", ["ingest"], ingress, env),
            _spawn("worker", ["worker"], worker, env),
        ]
        if not all(_healthy(service, progress) for service in services):
            return 1
        progress(
            f"callstream is up: ingress {ingress.url}, worker {worker.url} (wallboard "
            f"{worker.url}/), Kafka {bootstrap}. Ctrl-C stops all."
        )
        while not stop_requested.wait(0.5):
            for service in services:
                code = service.process.poll()
                if code is not None:
                    progress(f"the {service.name} exited with code {code}: stopping the rest")
                    return 1
        return exit_code
    finally:
        for service in services:
            _stop_service(service, progress)
        if started_broker:
            broker.stop(settings.data_dir, progress=progress)
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
        progress("stopped")
