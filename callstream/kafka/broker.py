"""Start, stop and inspect a single-node KRaft broker (broker + controller) on 127.0.0.1.

Everything about one broker lives in its data directory: ``server.properties``, ``logs/`` (the
Kafka log dirs, formatted on first start), ``kafka.log`` (its output), ``kafka.pid`` and
``broker.json`` (pid and address, for ``status`` and ``stop``). A local cluster
(``callstream/kafka/cluster.py``) is N such nodes, one per sub-directory, started and stopped
with the pieces here.
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from callstream.kafka.java import checked_java
from callstream.kafka.probe import broker_answers
from callstream.kafka.release import KafkaRelease
from callstream.kafka.replication import SINGLE, Replication
from callstream.progress import Progress, silent

HOST = "127.0.0.1"
# One broker alone may take a gigabyte; each node of a local cluster half of that, so three fit
# beside the services on a 2-core, 24 GB machine. CALLSTREAM_KAFKA_HEAP overrides both.
SINGLE_HEAP = "1g"
CLUSTER_NODE_HEAP = "512m"


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

    @property
    def cluster_file(self) -> Path:
        """Present when the data dir holds a local cluster (its nodes in ``node-<id>/``)."""
        return self.data_dir / "cluster.json"


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
    """Heap and extra flags. Defaults suit a 2-core, 24 GB machine shared with the services.
    ``heap`` None: SINGLE_HEAP for a single broker, CLUSTER_NODE_HEAP per node of a cluster."""

    heap: str | None = None
    extra: tuple[str, ...] = ()

    def with_default_heap(self, heap: str) -> JvmSettings:
        return self if self.heap else replace(self, heap=heap)


def jvm_options(settings: JvmSettings) -> list[str]:
    """JVM flags: a fixed heap (no resize pauses), G1 with short pauses, die on OOM."""
    heap = settings.heap or SINGLE_HEAP
    return [
        f"-Xms{heap}",
        f"-Xmx{heap}",
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


def quorum_voters(controller_ports: Sequence[int]) -> str:
    """``controller.quorum.voters`` of nodes 1..N listening on ``controller_ports`` in order.
    A static quorum (kraft.version 0): Kafka 4.0 still takes it, and it needs no voter set at
    format time, unlike the dynamic quorum's --initial-controllers."""
    return ",".join(
        f"{node_id}@{HOST}:{port}" for node_id, port in enumerate(controller_ports, start=1)
    )


@dataclass(frozen=True)
class NodeConfig:
    """One combined broker+controller: its id, ports, the quorum it votes in, and the copies
    its cluster's default and internal topics keep."""

    node_id: int
    port: int
    controller_port: int
    voters: str
    replication: Replication = SINGLE

    @classmethod
    def single(cls, port: int, controller_port: int) -> NodeConfig:
        """The lone node of ``callstream kafka start``: its own quorum, one copy of each topic."""
        return cls(1, port, controller_port, quorum_voters([controller_port]))


def server_properties(node: NodeConfig, log_dirs: Path) -> str:
    """A node's configuration: combined broker+controller, loopback only."""
    port, controller_port = node.port, node.controller_port
    factor, min_isr = str(node.replication.factor), str(node.replication.min_insync)
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": node.voters,
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        "num.partitions": "1",
        "default.replication.factor": factor,
        "min.insync.replicas": min_isr,
        # Kafka's default, said aloud: a replica that missed writes never becomes leader.
        "unclean.leader.election.enable": "false",
        "offsets.topic.replication.factor": factor,
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": factor,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": factor,
        "share.coordinator.state.topic.min.isr": min_isr,
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
def data_dir_lock(paths: BrokerPaths) -> Iterator[None]:
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


def checked_status(paths: BrokerPaths, progress: Progress) -> BrokerStatus:
    """The node's status, its stale pid file (a process that is gone) removed."""
    current = status(paths.data_dir)
    if current.stale_pid is not None:
        progress(f"removing a stale pid file ({paths.pid_file}: pid {current.stale_pid} is gone)")
        paths.pid_file.unlink(missing_ok=True)
    return current


def require_free_port(port: int) -> None:
    if port_in_use(port):
        raise BrokerError(
            f"port {port} on {HOST} is already in use by another program: "
            "stop it or choose another with --port"
        )


def require_fetched(release: KafkaRelease) -> None:
    if not release.manifest.is_file():
        raise BrokerError(
            f"Kafka {release.version} is not fetched yet ({release.cache_dir}): "
            "run `callstream kafka fetch`"
        )


def _format_storage(
    java: str, release: KafkaRelease, paths: BrokerPaths, cluster_id: str, progress: Progress
) -> None:
    progress(f"formatting KRaft storage in {paths.log_dirs} (cluster id {cluster_id})")
    command = [java, "-cp", release.classpath, "kafka.tools.StorageTool", "format"]
    command += ["-t", cluster_id, "-c", str(paths.config), "--ignore-formatted"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()[-15:]
        raise BrokerError("formatting KRaft storage failed:\n" + "\n".join(output))


@dataclass(frozen=True)
class Launched:
    """A node process this call started, and what to call it in messages."""

    name: str
    process: subprocess.Popen[bytes]
    paths: BrokerPaths


def launch_node(
    name: str,
    paths: BrokerPaths,
    node: NodeConfig,
    *,
    java: str,
    release: KafkaRelease,
    jvm: JvmSettings,
    cluster_id: str,
    progress: Progress,
) -> Launched:
    """Write the node's config, format its storage on first start (with ``cluster_id``), start
    it in the background and record its pid and address."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(server_properties(node, paths.log_dirs))
    if not (paths.log_dirs / "meta.properties").is_file():
        _format_storage(java, release, paths, cluster_id, progress)
    progress(f"starting Kafka {release.version} on {HOST}:{node.port} (log: {paths.output_log})")
    command = [java, *jvm_options(jvm), "-cp", release.classpath, "kafka.Kafka", str(paths.config)]
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
    state = {"pid": process.pid, "port": node.port, "kafka_version": release.version}
    paths.state_file.write_text(json.dumps(state) + "\n")
    return Launched(name, process, paths)


def wait_until_ready(
    launched: Sequence[Launched], lacking: Callable[[], str | None], timeout: float
) -> None:
    """Wait until ``lacking`` finds nothing missing (it says what is, or None). A node that
    exits, or the deadline, stops every node launched and raises BrokerError with its log."""
    deadline = time.monotonic() + timeout
    lack: str | None = "not asked yet"
    while time.monotonic() < deadline:
        for node in launched:
            if node.process.poll() is not None:
                _abandon(launched)
                raise BrokerError(
                    f"{node.name} exited with code {node.process.returncode} while starting; "
                    f"last lines of {node.paths.output_log}:\n{log_tail(node.paths)}"
                )
        lack = lacking()
        if lack is None:
            return
        time.sleep(0.2)
    _abandon(launched)
    logs = "\n".join(
        f"last lines of {node.paths.output_log}:\n{log_tail(node.paths)}" for node in launched
    )
    raise BrokerError(f"not ready within {timeout:.0f} s ({lack}) and stopped; {logs}")


def _abandon(launched: Sequence[Launched]) -> None:
    """Stop the nodes a failed start launched and forget their pids."""
    _terminate([node.process.pid for node in launched], grace=10.0)
    for node in launched:
        node.paths.pid_file.unlink(missing_ok=True)


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
    no Java, a data dir holding a cluster, or a broker that exits or stays silent past
    ``timeout`` seconds.
    """
    paths = BrokerPaths(data_dir.resolve())
    with data_dir_lock(paths):
        if paths.cluster_file.is_file():
            raise BrokerError(
                f"{paths.data_dir} holds a local cluster ({paths.cluster_file}): "
                "start it with --nodes, or use another --data-dir"
            )
        current = checked_status(paths, progress)
        if current.running:
            raise AlreadyRunning(current)
        require_free_port(port)
        require_fetched(release)
        java = checked_java()
        launched = launch_node(
            "the broker",
            paths,
            NodeConfig.single(port, free_port()),
            java=java,
            release=release,
            jvm=jvm,
            cluster_id=new_cluster_id(),
            progress=progress,
        )

        def lacking() -> str | None:
            answers = broker_answers(HOST, port, timeout=1.0)
            return None if answers else f"no answer to a metadata request on {HOST}:{port}"

        wait_until_ready([launched], lacking, timeout)
        return BrokerStatus(
            paths.data_dir, running=True, pid=launched.process.pid, port=port, answering=True
        )


def _terminate(pids: Sequence[int], grace: float) -> list[int]:
    """SIGTERM to all, wait up to ``grace`` seconds, then SIGKILL to those left; returns those.
    All at once: the nodes of a cluster shut down cleanly only while their quorum lasts (the
    last of three stopped alone waits for a controller until it is killed)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    left = list(pids)
    while left and time.monotonic() < deadline:
        for pid in left:
            _reap(pid)
        left = [pid for pid in left if _process_alive(pid)]
        if left:
            time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 10.0
    while any(_process_alive(pid) for pid in left) and time.monotonic() < kill_deadline:
        for pid in left:
            _reap(pid)
        time.sleep(0.05)
    return left


def stop_nodes(nodes: Sequence[tuple[str, BrokerPaths]], grace: float, progress: Progress) -> bool:
    """Stop the running ones of ``nodes`` (named, their data dir locked by the caller), all at
    once; False when none was running."""
    running: dict[int, tuple[str, BrokerPaths]] = {}
    for name, paths in nodes:
        current = status(paths.data_dir)
        if current.running and current.pid is not None:
            progress(f"stopping {name} (pid {current.pid}) with SIGTERM")
            running[current.pid] = (name, paths)
        else:
            if current.stale_pid is not None:
                progress(f"removing a stale pid file (pid {current.stale_pid} is gone)")
            paths.pid_file.unlink(missing_ok=True)
    for pid in _terminate(list(running), grace):
        progress(f"{running[pid][0]} did not stop within {grace:.0f} s and was killed (SIGKILL)")
    for _name, paths in running.values():
        paths.pid_file.unlink(missing_ok=True)
    return bool(running)


def stop(data_dir: Path, *, grace: float = 30.0, progress: Progress = silent) -> bool:
    """Stop the broker of ``data_dir`` cleanly; False when none was running."""
    paths = BrokerPaths(data_dir.resolve())
    with data_dir_lock(paths):
        return stop_nodes([("the broker", paths)], grace, progress)
