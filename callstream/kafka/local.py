"""A throwaway local broker or cluster: fetched, started on free ports, stopped on exit. What
the test session and the benches use when no cluster is named."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from callstream.kafka import broker, cluster
from callstream.kafka.fetch import fetch
from callstream.settings import KafkaSettings


@contextmanager
def temporary_broker(settings: KafkaSettings, data_dir: Path) -> Iterator[str]:
    """The bootstrap address of a broker running in ``data_dir`` for the ``with`` block."""
    fetch(settings.release, mvn=settings.mvn)
    started = broker.start(
        data_dir,
        settings.release,
        port=broker.free_port(),
        jvm=settings.jvm,
        timeout=settings.start_timeout,
    )
    try:
        yield f"{broker.HOST}:{started.port}"
    finally:
        broker.stop(data_dir)


@contextmanager
def temporary_cluster(settings: KafkaSettings, data_dir: Path, nodes: int = 3) -> Iterator[str]:
    """The bootstrap address of a ``nodes``-node KRaft cluster in ``data_dir`` for the block."""
    fetch(settings.release, mvn=settings.mvn)
    started = cluster.start(
        data_dir,
        settings.release,
        nodes=nodes,
        port=cluster.free_port_run(nodes),
        jvm=settings.jvm,
        timeout=settings.start_timeout,
    )
    try:
        yield started.bootstrap
    finally:
        cluster.stop(data_dir)
