"""`callstream worker` writes JSON lines only, faust's and aiokafka's own lines included."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.integration.ingress_support import ingress_settings
from tests.integration.worker_support import worker_process


def test_every_line_the_worker_writes_is_a_json_log_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = ingress_settings(kafka_bootstrap).topic_prefix  # topics of its own: created
    with worker_process(kafka_bootstrap, prefix, tmp_path) as worker:
        assert worker.stop() == 0
    lines = worker.log.read_bytes().splitlines()
    assert lines, "the worker wrote nothing"
    records = []
    for line in lines:
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert all({"ts", "level", "logger", "msg"} <= record.keys() for record in records)
    loggers = {record["logger"].split(".")[0] for record in records}
    assert {"callstream", "faust", "aiokafka"} <= loggers, loggers
