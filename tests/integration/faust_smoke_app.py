"""A minimal Faust app run by test_faust_compat: an agent, a rocksdict-backed table, a sink.

Configured by environment so the test controls broker, topics and ports.
"""

from __future__ import annotations

import os

import faust

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="rocksdb://",  # backed by rocksdict; "rocksdict://" fails at runtime
    datadir=os.environ["SMOKE_DATA_DIR"],
    web_host="127.0.0.1",
    web_port=int(os.environ["SMOKE_WEB_PORT"]),
    topic_partitions=3,
    topic_replication_factor=1,
    processing_guarantee="at_least_once",
)
source = app.topic(
    os.environ["SMOKE_SOURCE"], key_type=bytes, value_type=bytes, value_serializer="raw"
)
sink = app.topic(os.environ["SMOKE_SINK"], key_type=bytes, value_type=bytes, value_serializer="raw")
counts = app.Table("smoke-counts", default=int, partitions=3)


@app.agent(source)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for key, _value in stream.items():
        counts[key] += 1
        await sink.send(key=key, value=str(counts[key]).encode())


if __name__ == "__main__":
    app.main()
