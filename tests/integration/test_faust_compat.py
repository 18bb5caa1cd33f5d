"""faust-streaming and aiokafka against the pinned broker: group, table changelog, sink."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from callstream.kafka.broker import free_port
from tests.conftest import TopicFactory

APP = Path(__file__).with_name("faust_smoke_app.py")
KEYS = [f"call-{i}".encode() for i in range(5)]
RECORDS = 30


async def test_faust_agent_with_a_table_runs_on_the_pinned_broker(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    source = await new_topic(partitions=3, prefix="smoke-src")
    sink = await new_topic(partitions=3, prefix="smoke-sink")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(RECORDS):
            await producer.send(source, key=KEYS[i % len(KEYS)], value=b"x")
        await producer.flush()
    finally:
        await producer.stop()

    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "SMOKE_APP_ID": f"smoke-{uuid.uuid4().hex[:8]}",
        "SMOKE_DATA_DIR": str(tmp_path / "faust-data"),
        "SMOKE_WEB_PORT": str(free_port()),
        "SMOKE_SOURCE": source,
        "SMOKE_SINK": sink,
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(APP),
        "worker",
        "--loglevel",
        "warn",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    expected = dict(Counter(KEYS[i % len(KEYS)] for i in range(RECORDS)))
    latest: dict[bytes, int] = {}
    seen = 0
    consumer = AIOKafkaConsumer(
        sink, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        # Until every key's count reached its final value: the table counted every record.
        deadline = time.monotonic() + 90
        while latest != expected:
            if time.monotonic() > deadline or worker.returncode is not None:
                log_text = (tmp_path / "worker.log").read_text(errors="replace")
                raise AssertionError(
                    f"sink counts: expected {expected}, last seen {latest}, worker exit code "
                    f"{worker.returncode}\n{log_text[-3000:]}"
                )
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    seen += 1
                    latest[message.key] = max(latest.get(message.key, 0), int(message.value))
    finally:
        await consumer.stop()
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), 60)
        log.close()
    output = (tmp_path / "worker.log").read_text(errors="replace")
    assert seen == RECORDS, output[-3000:]  # and no count was sent twice
    assert code == 0, output[-3000:]
