"""The ``callstream`` command: one verb per job, progress on stderr, results on stdout.

Each verb imports what it runs, so a service process loads only its own modules.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from callstream import __version__
from callstream.export.cli import add_export_cli
from callstream.ingest.auth import AuthConfigError
from callstream.kafka import broker, cluster
from callstream.kafka.fetch import FetchError, fetch
from callstream.kafka.java import JavaError
from callstream.kafka.release import ReleaseError
from callstream.kafka.topiccheck import TopicMismatch
from callstream.processors.errors import PrivateApiMissing
from callstream.schemas.cli import add_schemas_cli
from callstream.settings import KafkaSettings, SettingsError
from callstream.traffic.replay_cli import add_capture_cli, add_replay_cli
from callstream.traffic.simulate_cli import add_simulate_cli
from callstream.up import Endpoint, run_up


def _progress(line: str) -> None:
    print(f"callstream: {line}", file=sys.stderr, flush=True)


def _kafka_settings() -> KafkaSettings:
    return KafkaSettings.from_env()


def cmd_kafka_fetch(args: argparse.Namespace) -> int:
    settings = _kafka_settings()
    fetch(settings.release, mvn=settings.mvn, offline_only=args.offline, progress=_progress)
    print(settings.release.libs_dir)
    return 0


def cmd_kafka_start(args: argparse.Namespace) -> int:
    settings = _kafka_settings()
    data_dir = args.data_dir or settings.data_dir
    port = args.port if args.port is not None else settings.port
    jvm, timeout = settings.jvm, settings.start_timeout
    try:
        if args.nodes == 1:
            single = broker.start(
                data_dir, settings.release, port=port, jvm=jvm, timeout=timeout, progress=_progress
            )
            bootstrap = single.bootstrap
            ready = f"Kafka is ready at {bootstrap} (pid {single.pid}, data dir {data_dir})"
        else:
            nodes = cluster.start(
                data_dir,
                settings.release,
                nodes=args.nodes,
                port=port,
                jvm=jvm,
                timeout=timeout,
                progress=_progress,
            )
            bootstrap = nodes.bootstrap
            ready = (
                f"the Kafka cluster is ready at {bootstrap} ({nodes.layout.nodes} nodes, quorum "
                f"leader node {nodes.quorum_leader}, data dir {data_dir})"
            )
    except (broker.AlreadyRunning, cluster.ClusterAlreadyRunning) as running:
        _progress(str(running))
        print(running.status.bootstrap)
        return 0
    _progress(ready)
    print(bootstrap)
    return 0


def cmd_kafka_stop(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or _kafka_settings().data_dir
    if cluster.is_cluster(data_dir):
        if cluster.stop(data_dir, progress=_progress):
            _progress("the cluster stopped")
        else:
            _progress(f"no node of the cluster runs for data dir {data_dir.resolve()}")
        return 0
    if broker.stop(data_dir, progress=_progress):
        _progress("the broker stopped")
    else:
        _progress(f"no broker runs for data dir {data_dir.resolve()}")
    return 0


def _node_line(current: broker.BrokerStatus) -> tuple[bool, str]:
    """Whether the node runs, and how ``status`` says it."""
    if current.running:
        answering = "answering" if current.answering else "not answering yet"
        return True, (
            f"running at {current.bootstrap} (pid {current.pid}, {answering}, "
            f"data dir {current.data_dir})"
        )
    stale = f"; stale pid file (pid {current.stale_pid} is gone)" if current.stale_pid else ""
    return False, f"not running (data dir {current.data_dir}{stale})"


def _cluster_status(data_dir: Path) -> int:
    """One line for the cluster, one per node. Exit 0 when every node runs, 3 when none does,
    1 when some do (LSB: dead, with a pid file left)."""
    current = cluster.status(data_dir)
    lines = [_node_line(node) for node in current.nodes]
    up = sum(running for running, _line in lines)
    leader = f"node {current.quorum_leader}" if current.quorum_leader else "none"
    state = "running" if up == len(lines) else "not running" if up == 0 else "degraded"
    print(
        f"cluster {state} at {current.bootstrap} ({up} of {len(lines)} nodes running, "
        f"quorum leader {leader}, data dir {current.data_dir})"
    )
    for node_id, (_running, line) in enumerate(lines, start=1):
        print(f"  node {node_id}: {line}")
    return 0 if up == len(lines) else 3 if up == 0 else 1


def cmd_kafka_status(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or _kafka_settings().data_dir
    if cluster.is_cluster(data_dir):
        return _cluster_status(data_dir)
    running, line = _node_line(broker.status(data_dir))
    print(line)
    return 0 if running else 3  # LSB: program is not running


def cmd_up(args: argparse.Namespace) -> int:
    settings = _kafka_settings()
    if args.kafka_port is not None or args.data_dir is not None:
        settings = replace(
            settings,
            port=args.kafka_port if args.kafka_port is not None else settings.port,
            data_dir=args.data_dir or settings.data_dir,
        )
    return run_up(
        settings,
        ingress=Endpoint(args.host, args.ingest_port),
        worker=Endpoint(args.host, args.worker_port),
        progress=_progress,
    )


def cmd_ingest(args: argparse.Namespace) -> int:
    from callstream.ingest.server import serve_ingress

    return serve_ingress(args.host, args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    from callstream.processors.runtime import run_worker
    from callstream.processors.settings import WorkerSettings

    settings = replace(WorkerSettings.from_env(), web_host=args.web_host, web_port=args.web_port)
    run_worker(settings)
    return 0


def _node_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of nodes") from None
    if not 1 <= count <= 9:
        raise argparse.ArgumentTypeError(f"{count} nodes: choose 1 to 9")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callstream",
        description="OMICall call events: webhook ingress, Kafka, stream processors.",
    )
    parser.add_argument("--version", action="version", version=f"callstream {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    kafka = verbs.add_parser(
        "kafka", help="the local Apache Kafka broker (KRaft, single node or a local cluster)"
    )
    kafka_verbs = kafka.add_subparsers(dest="kafka_verb", required=True, metavar="ACTION")
    fetch_parser = kafka_verbs.add_parser(
        "fetch",
        help="resolve the pinned Kafka jars into .cache/kafka/<version>/ (offline when cached)",
    )
    fetch_parser.add_argument(
        "--offline", action="store_true", help="never download: Maven's local repository only"
    )
    fetch_parser.set_defaults(func=cmd_kafka_fetch)

    data_dir_help = "broker data dir (default .cache/kafka-data, env CALLSTREAM_KAFKA_DATA_DIR)"
    start_parser = kafka_verbs.add_parser(
        "start", help="start the broker and wait until it is ready"
    )
    start_parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="broker port (default 9092, env CALLSTREAM_KAFKA_PORT); a cluster's nodes take "
        "it and the ports after it",
    )
    start_parser.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    start_parser.add_argument(
        "--nodes",
        type=_node_count,
        default=1,
        help="1 (default): a single broker; N: a local KRaft cluster of N broker+controller "
        "nodes in <data-dir>/node-1..N (replication factor 3 and min.insync.replicas 2 from 3)",
    )
    start_parser.set_defaults(func=cmd_kafka_start)
    stop_parser = kafka_verbs.add_parser(
        "stop", help="stop the broker, or every node of a cluster (SIGTERM, then SIGKILL)"
    )
    stop_parser.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    stop_parser.set_defaults(func=cmd_kafka_stop)
    status_parser = kafka_verbs.add_parser(
        "status",
        help="say whether the broker (or each node of a cluster) runs and where "
        "(exit 3 when not; 1 when some nodes of a cluster do not)",
    )
    status_parser.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    status_parser.set_defaults(func=cmd_kafka_status)

    up = verbs.add_parser("up", help="broker + ingress + worker in the foreground (make run)")
    up.add_argument("--host", default="127.0.0.1", help="address the services listen on")
    up.add_argument("--ingest-port", type=int, default=8080, help="ingress port (default 8080)")
    up.add_argument("--worker-port", type=int, default=6066, help="worker web port (default 6066)")
    up.add_argument("--kafka-port", type=int, default=None, help="local broker port (default 9092)")
    up.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    up.set_defaults(func=cmd_up)

    ingest = verbs.add_parser("ingest", help="the webhook ingress")
    ingest.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    ingest.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    ingest.set_defaults(func=cmd_ingest)

    worker = verbs.add_parser("worker", help="the stream-processing worker and its query API")
    worker.add_argument("--web-host", default="127.0.0.1", help="web address (default 127.0.0.1)")
    worker.add_argument("--web-port", type=int, default=6066, help="web port (default 6066)")
    worker.set_defaults(func=cmd_worker)

    add_schemas_cli(verbs)
    add_simulate_cli(verbs)
    add_replay_cli(verbs)
    add_capture_cli(verbs)
    add_export_cli(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (
        AuthConfigError,
        FetchError,
        broker.BrokerError,
        JavaError,
        PrivateApiMissing,
        ReleaseError,
        SettingsError,
        TopicMismatch,
    ) as exc:
        _progress(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return code
