"""Start, stop and inspect a local KRaft cluster: N combined broker+controller nodes on
127.0.0.1, for trying and testing what a replicated cluster changes (leaders moving, a broker
lost) on one machine.

The cluster's data dir holds ``cluster.json`` (its id, node count and ports) and one node per
``node-<id>/``, each a broker data dir as ``callstream/kafka/broker.py`` keeps it and started
with its pieces. Broker ports are consecutive from ``--port``; controller ports are free ports
picked when no node runs, kept in ``cluster.json`` so a node restarted alone rejoins its quorum.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from callstream.kafka import broker
from callstream.kafka.broker import (
    CLUSTER_NODE_HEAP,
    HOST,
    BrokerError,
    BrokerPaths,
    BrokerStatus,
    JvmSettings,
    NodeConfig,
    checked_status,
    data_dir_lock,
    free_port,
    launch_node,
    new_cluster_id,
    port_in_use,
    quorum_voters,
    require_fetched,
    require_free_port,
    stop_nodes,
    wait_until_ready,
)
from callstream.kafka.java import checked_java
from callstream.kafka.probe import metadata_brokers, quorum_leader
from callstream.kafka.release import KafkaRelease
from callstream.kafka.replication import Replication
from callstream.progress import Progress, silent

DEFAULT_JVM = JvmSettings()  # each node's heap: CLUSTER_NODE_HEAP


def node_ports(base: int, nodes: int) -> tuple[int, ...]:
    """The nodes' broker ports: ``base`` and the ones after it."""
    if nodes < 1:
        raise ValueError(f"a cluster needs at least one node, not {nodes}")
    if base < 1 or base + nodes - 1 > 65535:
        raise ValueError(f"ports {base}..{base + nodes - 1} are not all valid ports")
    return tuple(range(base, base + nodes))


def bootstrap_servers(ports: tuple[int, ...]) -> str:
    """``host:port`` of every node, comma-separated: what clients are given."""
    return ",".join(f"{HOST}:{port}" for port in ports)


def free_port_run(count: int) -> int:
    """A port with the ``count - 1`` after it free too (a cluster's broker ports)."""
    for _ in range(100):
        base = free_port()
        if base + count - 1 <= 65535 and not any(
            port_in_use(port) for port in range(base + 1, base + count)
        ):
            return base
    raise BrokerError(f"found no {count} consecutive free ports on {HOST}")


def _free_ports(count: int, taken: tuple[int, ...]) -> tuple[int, ...]:
    """``count`` distinct free ports, none of ``taken``."""
    picked: list[int] = []
    while len(picked) < count:
        port = free_port()
        if port not in picked and port not in taken:
            picked.append(port)
    return tuple(picked)


def node_dir(data_dir: Path, node_id: int) -> Path:
    return data_dir / f"node-{node_id}"


@dataclass(frozen=True)
class ClusterLayout:
    """What every node must agree on: the cluster id, and each node's ports (node i at
    index i - 1)."""

    cluster_id: str
    ports: tuple[int, ...]
    controller_ports: tuple[int, ...]

    @property
    def nodes(self) -> int:
        return len(self.ports)

    @property
    def node_ids(self) -> range:
        return range(1, self.nodes + 1)

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.ports)

    def node(self, node_id: int) -> NodeConfig:
        return NodeConfig(
            node_id,
            self.ports[node_id - 1],
            self.controller_ports[node_id - 1],
            quorum_voters(self.controller_ports),
            Replication.for_brokers(self.nodes),
        )

    def to_json(self) -> str:
        fields = {
            "cluster_id": self.cluster_id,
            "ports": list(self.ports),
            "controller_ports": list(self.controller_ports),
        }
        return json.dumps(fields) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterLayout:
        fields = json.loads(text)
        return cls(
            str(fields["cluster_id"]),
            tuple(int(port) for port in fields["ports"]),
            tuple(int(port) for port in fields["controller_ports"]),
        )


def read_layout(data_dir: Path) -> ClusterLayout | None:
    """The layout of the cluster in ``data_dir``; None when it holds none."""
    try:
        return ClusterLayout.from_json(BrokerPaths(data_dir).cluster_file.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_cluster(data_dir: Path) -> bool:
    return BrokerPaths(data_dir.resolve()).cluster_file.is_file()


@dataclass(frozen=True)
class ClusterStatus:
    """Each node's status (node i at index i - 1) and the metadata quorum's leader."""

    data_dir: Path
    layout: ClusterLayout
    nodes: tuple[BrokerStatus, ...]
    quorum_leader: int | None

    @property
    def running(self) -> bool:
        """Every node runs."""
        return all(node.running for node in self.nodes)

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap


class ClusterAlreadyRunning(BrokerError):
    """``start`` found every node of the cluster running."""

    def __init__(self, current: ClusterStatus) -> None:
        super().__init__(
            f"the cluster already runs at {current.bootstrap} ({current.layout.nodes} nodes, "
            f"data dir {current.data_dir})"
        )
        self.status = current


def _node_paths(data_dir: Path, layout: ClusterLayout) -> list[BrokerPaths]:
    return [BrokerPaths(node_dir(data_dir, node_id)) for node_id in layout.node_ids]


def _quorum_leader(layout: ClusterLayout) -> int | None:
    """The quorum's leader as the first controller that knows one says."""
    for port in layout.controller_ports:
        leader = quorum_leader(HOST, port, timeout=1.0)
        if leader is not None:
            return leader
    return None


def lacking(layout: ClusterLayout) -> str | None:
    """What keeps the cluster from being ready: a node that does not answer a metadata request
    or does not list every broker yet (each registered with, and unfenced by, the quorum), or a
    quorum without a leader. None when nothing does."""
    for node_id, port in zip(layout.node_ids, layout.ports, strict=True):
        try:
            seen = len(metadata_brokers(HOST, port, timeout=1.0))
        except (OSError, ValueError):
            return f"node {node_id} does not answer a metadata request on {HOST}:{port}"
        if seen < layout.nodes:
            return f"node {node_id} lists {seen} of {layout.nodes} brokers"
    if _quorum_leader(layout) is None:
        return "the metadata quorum has no leader"
    return None


def status(data_dir: Path) -> ClusterStatus:
    """Each node of the cluster in ``data_dir``, and the quorum's leader. Raises BrokerError
    when ``data_dir`` holds no cluster."""
    data_dir = data_dir.resolve()
    layout = read_layout(data_dir)
    if layout is None:
        raise BrokerError(f"{data_dir} holds no local cluster (no readable cluster.json)")
    nodes = tuple(broker.status(paths.data_dir) for paths in _node_paths(data_dir, layout))
    leader = _quorum_leader(layout) if any(node.running for node in nodes) else None
    return ClusterStatus(data_dir, layout, nodes, leader)


def _layout_for_start(
    paths: BrokerPaths, stored: ClusterLayout | None, nodes: int, port: int, any_running: bool
) -> ClusterLayout:
    """The stored layout while a node runs (the others must join its quorum); else the one
    asked for, keeping the stored cluster id (the nodes' storage was formatted with it)."""
    if stored is not None and stored.nodes != nodes:
        raise BrokerError(
            f"{paths.data_dir} holds a cluster of {stored.nodes} nodes: start it with "
            f"--nodes {stored.nodes}, or use another --data-dir"
        )
    if stored is not None and any_running:
        return stored
    ports = node_ports(port, nodes)
    return ClusterLayout(
        stored.cluster_id if stored is not None else new_cluster_id(),
        ports,
        _free_ports(nodes, taken=ports),
    )


def start(
    data_dir: Path,
    release: KafkaRelease,
    *,
    nodes: int = 3,
    port: int = 9092,
    jvm: JvmSettings = DEFAULT_JVM,
    timeout: float = 60.0,
    progress: Progress = silent,
) -> ClusterStatus:
    """Start the nodes of the cluster that do not run (all of them at first) and wait until
    every node lists every broker and the quorum has a leader.

    Raises ClusterAlreadyRunning when every node runs; BrokerError for a port in use, a data
    dir holding a single broker or a cluster of another size, a missing cache, or a node that
    exits or a cluster not ready within ``timeout`` seconds (every node it started is stopped).
    """
    paths = BrokerPaths(data_dir.resolve())
    with data_dir_lock(paths):
        if (paths.log_dirs / "meta.properties").is_file():
            raise BrokerError(
                f"{paths.data_dir} holds a single broker: start it without --nodes, "
                "or use another --data-dir"
            )
        stored = read_layout(paths.data_dir)
        current = (
            [checked_status(node, progress) for node in _node_paths(paths.data_dir, stored)]
            if stored is not None
            else []
        )
        if current and all(node.running for node in current) and stored is not None:
            raise ClusterAlreadyRunning(status(paths.data_dir))
        any_running = any(node.running for node in current)
        layout = _layout_for_start(paths, stored, nodes, port, any_running)
        down = [
            node_id for node_id in layout.node_ids if not (current and current[node_id - 1].running)
        ]
        for node_id in down:
            require_free_port(layout.ports[node_id - 1])
        require_fetched(release)
        java = checked_java()
        paths.cluster_file.write_text(layout.to_json())
        jvm = jvm.with_default_heap(CLUSTER_NODE_HEAP)
        launched = [
            launch_node(
                f"node {node_id}",
                BrokerPaths(node_dir(paths.data_dir, node_id)),
                layout.node(node_id),
                java=java,
                release=release,
                jvm=jvm,
                cluster_id=layout.cluster_id,
                progress=progress,
            )
            for node_id in down
        ]
        wait_until_ready(launched, lambda: lacking(layout), timeout)
        return status(paths.data_dir)


def stop(data_dir: Path, *, grace: float = 30.0, progress: Progress = silent) -> bool:
    """Stop every node of the cluster in ``data_dir`` (SIGTERM, ``grace`` seconds, SIGKILL);
    False when none was running."""
    paths = BrokerPaths(data_dir.resolve())
    with data_dir_lock(paths):
        layout = read_layout(paths.data_dir)
        if layout is None:
            return False
        nodes = [
            (f"node {node_id}", node)
            for node_id, node in zip(
                layout.node_ids, _node_paths(paths.data_dir, layout), strict=True
            )
        ]
        return stop_nodes(nodes, grace, progress)
