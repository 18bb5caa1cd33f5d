"""The topic reader's merge (capture's and export's): timestamp order across partitions, each
partition's offset order kept, a record handed on only once every partition still being read
has one to compare."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aiokafka.structs import TopicPartition

from callstream.kafka.broker import free_port
from callstream.kafka.reading import BUFFER_PER_PARTITION, Merge, Span
from tests.integration.cli_helpers import callstream

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None = None
    value: bytes | None = b"{}"


def recs(tp: TopicPartition, stamps: list[int], first: int = 0) -> list[Rec]:
    return [Rec(tp.topic, tp.partition, first + n, ts) for n, ts in enumerate(stamps)]


def written(out: list[Rec]) -> list[tuple[int, int]]:
    return [(record.partition, record.offset) for record in out]


def test_records_wait_for_every_partition_still_being_read() -> None:
    out: list[Rec] = []
    merge = Merge({A: Span(0, 3), B: Span(0, 2)}, out.append)
    merge.add(A, recs(A, [10, 30, 50]))
    merge.read_all.add(A)
    merge.write_ready()
    assert written(out) == []  # B may still hold something earlier
    merge.add(B, recs(B, [20]))
    merge.write_ready()
    assert written(out) == [(0, 0), (1, 0)]  # B's next record may come before A's 30
    merge.add(B, recs(B, [5, 99], first=1))  # offset 2 is past B's end: dropped
    merge.read_all.add(B)
    merge.write_ready()
    # B's late timestamp 5 keeps its offset order; nothing past the end is written
    assert written(out) == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2)]
    assert merge.finished
    assert merge.written == 5


def test_a_partition_holding_enough_is_not_fetched_from() -> None:
    merge = Merge({A: Span(0, 10_000), B: Span(0, 10)}, lambda _record: None)
    merge.add(A, recs(A, list(range(BUFFER_PER_PARTITION))))
    merge.write_ready()
    assert merge.full() == {A}
    merge.read_all.add(B)
    assert merge.full() == {A, B}


def test_no_broker_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    done = callstream(
        "capture",
        "--out",
        str(tmp_path / "out.jsonl"),
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"},
        timeout=60,
    )
    assert done.code == 1
    assert "callstream: error: KafkaConnectionError" in done.stderr
    assert "Unclosed" not in done.stderr  # no client left behind to warn about
