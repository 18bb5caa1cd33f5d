"""Start, stop and inspect a single-node KRaft broker (broker + controller) on 127.0.0.1.

Everything about one broker lives in its data directory: ``server.properties``, ``logs/`` (the
Kafka log dirs, formatted on first start), ``kafka.log`` (its output), ``kafka.pid`` and
``broker.json`` (pid and address, for ``status`` and ``stop``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from callstream.kafka.java import checked_java
from callstream.kafka.probe import broker_answers
from callstream.kafka.release import KafkaRelease
from callstream.progress import Progress, silent

HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    """The broker could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerPaths:
    """The files of one broker, all inside ``data_dir``."""

    data_dir: Path

    @property
    def config(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def output_log(self) -> Path:
        return self.data_dir / "kafka.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "broker.json"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / ".lock"


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status`` reports. ``stale_pid`` is a pid file whose process is gone."""

    data_dir: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    answering: bool = False
    stale_pid: int | None = None

    @property
    def bootstrap(self) -> str | None:
        return f"{HOST}:{self.port}" if self.port is not None else None


@dataclass(frozen=True)
class JvmSettings:
    """Heap and extra flags. Defaults suit a 2-core, 24 GB machine shared with the services."""

    heap: str = "1g"
    extra: tuple[str, ...] = ()


def jvm_options(settings: JvmSettings) -> list[str]:
    """JVM flags: a fixed heap (no resize pauses), G1 with short pauses, die on OOM."""
    return [
        f"-Xms{settings.heap}",
        f"-Xmx{settings.heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-XX:+ExitOnOutOfMemoryError",
        "-XX:ParallelGCThreads=2",
        "-XX:ConcGCThreads=1",
        "-Djava.awt.headless=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.log.kafka.log=warn",
        "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.storage=warn",
        "-Dorg.slf4j.simpleLogger.log.state.change.logger=warn",
        *settings.extra,
    ]


def server_properties(port: int, controller_port: int, log_dirs: Path) -> str:
    """The broker's configuration: one combined node, loopback only, replication factor 1."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Consumer groups start at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        # A restart on the same data dir waits out the old registration's session; keep it short.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "3000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        # Services create their topics with the registry's settings and check them; a topic the
        # broker made on first use (num.partitions=1) would split a call across two states.
        "auto.create.topics.enable": "false",
    }
    lines = ["# Written by `callstream kafka start` on every start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding.

    Never starting with '-', which the storage tool would read as an option (Kafka's own
    Uuid.randomUuid() redraws for the same reason).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _process_alive(pid: int) -> bool:
    """True for a live, non-zombie process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): kill(0) said it exists
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_broker(pid: int, paths: BrokerPaths) -> bool:
    """The pid is a live Kafka broker started with this data dir's config (not a reused pid)."""
    if not _process_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"kafka.Kafka" in cmdline and str(paths.config).encode() in cmdline


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _read_pid(paths: BrokerPaths) -> int | None:
    try:
        return int(paths.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_port(paths: BrokerPaths) -> int | None:
    try:
        return int(json.loads(paths.state_file.read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def status(data_dir: Path) -> BrokerStatus:
    """Whether the broker of ``data_dir`` runs, where, and whether it answers."""
    paths = BrokerPaths(data_dir.resolve())
    pid = _read_pid(paths)
    if pid is None:
        return BrokerStatus(paths.data_dir, running=False)
    if not _is_our_broker(pid, paths):
        return BrokerStatus(paths.data_dir, running=False, stale_pid=pid)
    port = _read_port(paths)
    answering = port is not None and broker_answers(HOST, port, timeout=1.0)
    return BrokerStatus(paths.data_dir, running=True, pid=pid, port=port, answering=answering)


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something already listens on ``host:port`` (a bind fails)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = HOST) -> int:
    """A port the kernel says is free now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(paths: BrokerPaths, lines: int = 25) -> str:
    try:
        text = paths.output_log.read_text(errors="replace")
    except OSError:
        return "(no broker log)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _data_dir_lock(paths: BrokerPaths) -> Iterator[None]:
    """Serialise start/stop on one data dir (two `start`s at once must not both launch)."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    with paths.lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class AlreadyRunning(BrokerError):
    """``start`` found the broker of this data dir already running."""

    def __init__(self, current: BrokerStatus) -> None:
        super().__init__(
            f"the broker already runs at {current.bootstrap} (pid {current.pid}, "
            f"data dir {current.data_dir})"
        )
        self.status = current


def _format_storage(
    java: str, release: KafkaRelease, paths: BrokerPaths, progress: Progress
) -> None:
    cluster_id = new_cluster_id()
    progress(f"formatting KRaft storage in {paths.log_dirs} (cluster id {cluster_id})")
    command = [java, "-cp", release.classpath, "kafka.tools.StorageTool", "format"]
    command += ["-t", cluster_id, "-c", str(paths.config), "--ignore-formatted"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()[-15:]
        raise BrokerError("formatting KRaft storage failed:\n" + "\n".join(output))


def _wait_until_ready(
    process: subprocess.Popen[bytes], paths: BrokerPaths, port: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(
                f"the broker exited with code {process.returncode} while starting; "
                f"last lines of {paths.output_log}:\n{log_tail(paths)}"
            )
        if broker_answers(HOST, port, timeout=1.0):
            return
        time.sleep(0.2)
    _terminate(process.pid, grace=10.0)
    raise BrokerError(
        f"the broker did not answer a metadata request on {HOST}:{port} within {timeout:.0f} s "
        f"and was stopped; last lines of {paths.output_log}:\n{log_tail(paths)}"
    )


def start(
    data_dir: Path,
    release: KafkaRelease,
    *,
    port: int = 9092,
    jvm: JvmSettings = JvmSettings(),
    timeout: float = 60.0,
    progress: Progress = silent,
) -> BrokerStatus:
    """Start the broker in the background and wait until it answers a metadata request.

    Raises AlreadyRunning when it already runs, BrokerError for a port in use, a missing cache,
    no Java, or a broker that exits or stays silent past ``timeout`` seconds.
    """
    paths = BrokerPaths(data_dir.resolve())
    with _data_dir_lock(paths):
        current = status(paths.data_dir)
        if current.running:
            raise AlreadyRunning(current)
        if current.stale_pid is not None:
            progress(
                f"removing a stale pid file ({paths.pid_file}: pid {current.stale_pid} is gone)"
            )
            paths.pid_file.unlink(missing_ok=True)
        if port_in_use(port):
            raise BrokerError(
                f"port {port} on {HOST} is already in use by another program: "
                "stop it or choose another with --port"
            )
        if not release.manifest.is_file():
            raise BrokerError(
                f"Kafka {release.version} is not fetched yet ({release.cache_dir}): "
                "run `callstream kafka fetch`"
            )
        java = checked_java()
        controller_port = free_port()
        paths.config.write_text(server_properties(port, controller_port, paths.log_dirs))
        if not (paths.log_dirs / "meta.properties").is_file():
            _format_storage(java, release, paths, progress)
        progress(f"starting Kafka {release.version} on {HOST}:{port} (log: {paths.output_log})")
        command = [
            java,
            *jvm_options(jvm),
            "-cp",
            release.classpath,
            "kafka.Kafka",
            str(paths.config),
        ]
        with paths.output_log.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=paths.data_dir,
                start_new_session=True,  # Ctrl-C in the caller's terminal must not reach it
            )
        paths.pid_file.write_text(f"{process.pid}\n")
        state = {"pid": process.pid, "port": port, "kafka_version": release.version}
        paths.state_file.write_text(json.dumps(state) + "\n")
        try:
            _wait_until_ready(process, paths, port, timeout)
        except BrokerError:
            paths.pid_file.unlink(missing_ok=True)
            raise
        return BrokerStatus(
            paths.data_dir, running=True, pid=process.pid, port=port, answering=True
        )


def _terminate(pid: int, grace: float) -> bool:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. True when it stopped within grace."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pid)
        if not _process_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 10.0
    while _process_alive(pid) and time.monotonic() < kill_deadline:
        _reap(pid)
        time.sleep(0.05)
    return False


def stop(data_dir: Path, *, grace: float = 30.0, progress: Progress = silent) -> bool:
    """Stop the broker of ``data_dir`` cleanly; False when none was running."""
    paths = BrokerPaths(data_dir.resolve())
    with _data_dir_lock(paths):
        current = status(paths.data_dir)
        if not current.running or current.pid is None:
            if current.stale_pid is not None:
                progress(f"removing a stale pid file (pid {current.stale_pid} is gone)")
            paths.pid_file.unlink(missing_ok=True)
            return False
        progress(f"stopping the broker (pid {current.pid}) with SIGTERM")
        if not _terminate(current.pid, grace):
            progress(f"the broker did not stop within {grace:.0f} s and was killed (SIGKILL)")
        paths.pid_file.unlink(missing_ok=True)
        return True
