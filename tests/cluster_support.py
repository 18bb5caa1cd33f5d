"""A local three-node cluster for the session, started and stopped through the `callstream`
command as a user runs it (tests/conftest.py's ``kafka_cluster``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from callstream.kafka import broker, cluster
from tests.integration.cli_helpers import callstream

NODES = 3


@dataclass(frozen=True)
class LocalCluster:
    """A running cluster: its bootstrap address (every node), data dir, and the environment to
    run `callstream kafka …` against it."""

    bootstrap: str
    data_dir: Path
    base_port: int
    env: dict[str, str]

    def kafka(self, verb: str, *args: str) -> tuple[int, str, str]:
        """``callstream kafka <verb> --data-dir <its dir> …``: exit code, stdout, stderr."""
        run = callstream("kafka", verb, "--data-dir", str(self.data_dir), *args, env=self.env)
        return run.code, run.stdout, run.stderr

    def start(self) -> str:
        """``kafka start --nodes 3`` on its ports (starts the nodes that are down); the
        bootstrap address it prints."""
        code, out, err = self.kafka("start", "--nodes", str(NODES), "--port", str(self.base_port))
        assert code == 0, err
        return out.strip()

    def node_pid(self, node_id: int) -> int:
        current = broker.status(cluster.node_dir(self.data_dir, node_id))
        assert current.running, f"node {node_id} is not running"
        assert current.pid is not None
        return current.pid


def local_cluster(data_dir: Path, env: dict[str, str]) -> Iterator[LocalCluster]:
    """Start a cluster in ``data_dir`` on free ports, hand it over, then stop it and check that
    every node is gone."""
    handle = LocalCluster("", data_dir, cluster.free_port_run(NODES), env)
    try:
        yield LocalCluster(handle.start(), data_dir, handle.base_port, env)
    finally:
        code, _out, err = handle.kafka("stop")
        assert code == 0, err
        after = cluster.status(data_dir)
        assert not any(node.running for node in after.nodes), f"nodes left running: {after}"
