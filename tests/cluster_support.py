"""A local three-node cluster for the session, started and stopped through the `callstream`
command as a user runs it (tests/conftest.py's ``kafka_cluster``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from callstream.kafka import broker, cluster
from tests.integration.cli_helpers import callstream
from tests.kafka_support import wait_while_lacking

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


async def topic_partitions(admin: AIOKafkaAdminClient, name: str) -> list[dict[str, Any]]:
    """The partitions of topic ``name`` as the cluster describes them, by number."""
    (described,) = await admin.describe_topics([name])
    return sorted(described["partitions"], key=lambda partition: partition["partition"])


async def leaderships(admin: AIOKafkaAdminClient, names: list[str]) -> Counter[int]:
    """How many partitions of the topics ``names`` each node leads."""
    leaders = [p["leader"] for name in names for p in await topic_partitions(admin, name)]
    return Counter(leaders)


async def wait_fully_replicated(
    admin: AIOKafkaAdminClient, names: list[str], deadline_s: float = 90
) -> None:
    """Until every partition of ``names`` has a leader and all its replicas in sync (a node
    brought back has caught up): the state the next test expects."""

    async def lacking() -> str | None:
        try:
            for name in names:
                for p in await topic_partitions(admin, name):
                    if p["leader"] == -1 or len(p["isr"]) < NODES:
                        return f"{name}[{p['partition']}]: leader {p['leader']}, isr {p['isr']}"
        except KafkaError as error:  # aiokafka's admin asks any node, a dead one too
            return f"describing the topics failed: {error!r}"
        return None

    await wait_while_lacking(lacking, "every replica in sync", deadline_s=deadline_s)
