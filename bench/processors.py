"""Events per second one worker folds and publishes, against a plain aiokafka consume loop that
only decodes the same records, in one run.

The input topics are pre-filled with synthetic calls (ringing, answered, hangup, CDR each). The
worker's rate is the events divided by the time from its being ready to the last call's
completion on `callstream.calls-completed`; its CPU time per event comes from /proc (a steadier
figure than the rate on a shared machine). Two more rows bound what a worker can reach: a faust
agent that does nothing over the same records, and the fold alone in this process, without
Kafka. A broker is started for the run unless KAFKA_BOOTSTRAP_SERVERS names one.

`--shape cdr` sends one CDR per call instead (a call with no live events completes at once), so
every event leaves one more call state in the table: `--calls 1000000 --shape cdr` has the
worker hold a million states in a few minutes, and the RSS rows say what that costs.

    .venv/bin/python -m bench.processors [--calls 2000] [--shape full|cdr] [--store rocksdb]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.ingest import PeakRss, kafka, rss_mb, server
from bench.report import print_table, write_results
from callstream.kafka import broker
from callstream.kafka.admin import ensure_topics
from callstream.processors.step import fold_record
from callstream.schemas.topics import CALL_EVENTS, CALLS_COMPLETED, CDRS, TOPICS, topic_names

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "schemas" / "samples"
TARGETS = {"rate": 5000.0, "ratio": 0.3}


def synthetic_calls(count: int, shape: str = "full") -> list[tuple[str, bytes, bytes]]:
    """(logical topic, key, value) for ``count`` answered calls, in delivery order: ringing,
    answered, hangup and the CDR each, or (``shape="cdr"``) only the CDR."""
    live = orjson.loads((SAMPLES / "event-ringing.json").read_bytes())
    cdr = orjson.loads((SAMPLES / "cdr.json").read_bytes())
    states = ((0, "ringing"), (4000, "answered"), (10000, "hangup")) if shape == "full" else ()
    records = []
    for i in range(count):
        call = f"bench-{i:07d}"
        start = 1_700_000_000_000 + i * 1000
        for offset, state in states:
            body = {**live, "call_uuid": call, "state": state, "date_time": start + offset}
            records.append((CALL_EVENTS, call.encode(), orjson.dumps(body)))
        records.append((CDRS, call.encode(), orjson.dumps({**cdr, "transaction_id": call})))
    return records


async def fill(
    bootstrap: str, names: dict[str, str], records: list[tuple[str, bytes, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for logical, key, value in records:
            await producer.send(names[logical], value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def plain_loop_rate(bootstrap: str, names: dict[str, str], total: int) -> float:
    """The baseline: consume both input topics and decode every record, nothing else."""
    consumer = AIOKafkaConsumer(
        names[CALL_EVENTS],
        names[CDRS],
        bootstrap_servers=bootstrap,
        group_id=f"bench-plain-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen = 0
    try:
        started = time.perf_counter()
        while seen < total:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for message in messages:
                    orjson.loads(message.value)
                    seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def wait_completed(bootstrap: str, topic: str, expected: int, deadline_s: float) -> int:
    """Read ``topic`` until ``expected`` distinct calls completed (or the deadline)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    calls: set[bytes] = set()
    try:
        deadline = time.monotonic() + deadline_s
        while len(calls) < expected and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                calls.update(message.key for message in messages)
    finally:
        await consumer.stop()
    return len(calls)


def faust_floor_rate(bootstrap: str, names: dict[str, str], total: int, tmp: str) -> float:
    """A faust agent that does nothing with the same records (bench/faust_floor.py)."""
    out = Path(tmp) / "floor.txt"
    env = {
        **os.environ,
        "BENCH_FLOOR_BOOTSTRAP": bootstrap,
        "BENCH_FLOOR_TOPICS": f"{names[CALL_EVENTS]},{names[CDRS]}",
        "BENCH_FLOOR_EVENTS": str(total),
        "BENCH_FLOOR_OUT": str(out),
        "BENCH_FLOOR_DATA_DIR": str(Path(tmp) / "floor-data"),
    }
    command = [sys.executable, "-m", "bench.faust_floor"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        process.wait(max(300.0, total / 500))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    events, seconds = out.read_text().split()
    return int(events) / float(seconds)


def fold_only_rate(records: list[tuple[str, bytes, bytes]]) -> float:
    """The fold alone, in this process: parse, fold and encode every record, a dict for the
    table, no Kafka. What no worker doing this fold can beat, framework or not."""
    table: dict[str, bytes] = {}
    started = time.perf_counter()
    for _, _, value in records:
        step = fold_record(table.get, value, 1_700_000_000_000)
        if step.call_id is not None and step.stored is not None:
            table[step.call_id] = step.stored
    return len(records) / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="synthetic calls (4 events each)")
    parser.add_argument("--store", default="rocksdb", help="worker table store")
    parser.add_argument(
        "--shape",
        choices=("full", "cdr"),
        default="full",
        help="full: ringing, answered, hangup, CDR per call; cdr: only the CDR (a state per event)",
    )
    parser.add_argument(
        "--skip-floor", action="store_true", help="no no-op faust agent run (long RSS runs)"
    )
    args = parser.parse_args(argv)

    records = synthetic_calls(args.calls, args.shape)
    with kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        prefix = f"benchp{uuid.uuid4().hex[:8]}."
        names = topic_names(prefix)
        asyncio.run(ensure_topics(bootstrap, TOPICS, prefix))
        print(f"bench: filling {len(records):,} events ...", file=sys.stderr)
        asyncio.run(fill(bootstrap, names, records))
        plain = asyncio.run(plain_loop_rate(bootstrap, names, len(records)))
        fold_only = fold_only_rate(records)
        print("bench: a no-op faust agent ...", file=sys.stderr)
        floor = 0.0 if args.skip_floor else faust_floor_rate(bootstrap, names, len(records), tmp)

        port = broker.free_port()
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CALLSTREAM_TOPIC_PREFIX": prefix,
            "CALLSTREAM_DATA_DIR": tmp,
            "CALLSTREAM_STORE": args.store,
            "CALLSTREAM_LOG_LEVEL": "WARNING",
        }
        print("bench: the worker ...", file=sys.stderr)
        command = [sys.executable, "-m", "callstream", "worker", "--web-port", str(port)]
        with server(command, env, f"http://127.0.0.1:{port}/readyz", 120) as worker:
            started = time.perf_counter()  # ready: joined, recovered, consuming
            cpu_at_ready = cpu_seconds(worker.pid)
            deadline_s = max(600.0, len(records) / 500)
            with PeakRss([worker.pid]) as peak:
                done = asyncio.run(
                    wait_completed(bootstrap, names[CALLS_COMPLETED], args.calls, deadline_s)
                )
            elapsed = time.perf_counter() - started
            cpu_us = (cpu_seconds(worker.pid) - cpu_at_ready) / len(records) * 1e6
            final_rss = rss_mb([worker.pid])

    rate = len(records) / elapsed
    figures = {
        "calls": args.calls,
        "calls_completed": done,
        "events": len(records),
        "plain_loop_events_per_s": plain,
        "faust_noop_agent_events_per_s": floor,
        "fold_only_events_per_s": fold_only,
        "worker_events_per_s": rate,
        "ratio": rate / plain,
        "worker_cpu_us_per_event": cpu_us,
        "worker_peak_rss_mb": peak.peak,
        "worker_rss_mb_at_end": final_rss,
        "call_states_held": done,
        "shape": args.shape,
        "store": args.store,
        "targets": TARGETS,
    }
    print_table(
        ["measure", "value", "target"],
        [
            ["plain aiokafka loop, events/s", plain, ""],
            ["no-op faust agent, events/s", floor, ""],
            ["worker (fold + publish), events/s", rate, f">= {TARGETS['rate']:,.0f}"],
            ["ratio worker / plain loop", rate / plain, f">= {TARGETS['ratio']}"],
            ["ratio no-op faust agent / plain loop", floor / plain, ""],
            ["fold alone in-process (no Kafka), events/s", fold_only, ""],
            ["ratio fold alone / plain loop", fold_only / plain, ""],
            ["worker CPU per event, us", cpu_us, ""],
            ["worker peak RSS, MB", peak.peak, ""],
            [f"worker RSS at the end, MB ({done:,} call states)", final_rss, "< 500 at 1M"],
        ],
    )
    print(f"wrote {write_results('processors', figures)}")
    met = done == args.calls and rate >= TARGETS["rate"] and rate / plain >= TARGETS["ratio"]
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
