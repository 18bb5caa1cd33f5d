"""Ingress throughput and latency with acks=all, against a bare aiohttp handler, in one run.

Load comes from wrk (Debian package `wrk`) in its own process on loopback, posting the CDR
sample. Both servers run side by side with the broker up, and take turns in rounds: the maximum
rate of each (closed loop, N connections), the ratio of the pair, and the median of the rounds'
ratios is the figure (one pair swings with whatever else the two cores do). The ingress is
warmed up first, for the broker's JVM more than for it. Then the ingress's
latency at about half its median rate (wrk's per-connection delay), and its peak RSS under
load. A broker is started for the run unless KAFKA_BOOTSTRAP_SERVERS names one.

    .venv/bin/python -m bench.ingest [--rounds 3] [--warmup 20] [--duration 8] [--connections 32]
        [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.report import print_table, write_results
from callstream.health import wait_http_ok
from callstream.kafka import broker
from callstream.kafka.admin import ensure_topics
from callstream.kafka.local import temporary_broker, temporary_cluster
from callstream.schemas.topics import TOPICS
from callstream.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
CDR = ROOT / "schemas" / "samples" / "cdr.json"
TOKEN = "bench-token-" + uuid.uuid4().hex
TARGETS = {"ratio": 0.5, "rate": 5000.0, "p99_ms": 25.0, "rss_mb": 150.0}


@dataclass
class WrkResult:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text)[0]), re.sub(r"[\d.]+", "", text)  # type: ignore[index]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def median_run(results: list[WrkResult]) -> WrkResult:
    """The run of median rate (the upper one of an even count)."""
    return sorted(results, key=lambda result: result.rate)[len(results) // 2]


def run_wrk(url: str, duration: int, connections: int, delay_ms: float | None) -> WrkResult:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    lua = [
        'wrk.method = "POST"',
        f"wrk.body = [==[{CDR.read_text()}]==]",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if delay_ms is not None:
        lua.append(f"function delay() return {delay_ms:.3f} end")
    script.write_text("\n".join(lua) + "\n")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    shutil.rmtree(script.parent, ignore_errors=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    # Lines of the latency distribution only: "68.50%" in the thread stats also holds "50%".
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)[1])  # type: ignore[index]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx[1]) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(rate, p50, p99, errors)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class PeakRss:
    """Samples the summed RSS of some processes every 100 ms while in a ``with`` block."""

    def __init__(self, pids: list[int]) -> None:
        self.pids, self.peak, self._stop = pids, 0.0, threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_mb(self.pids))

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def kafka(nodes: int = 1) -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS, else a broker (or a cluster of ``nodes``) for the block."""
    settings = KafkaSettings.from_env()
    if settings.bootstrap_servers:
        yield settings.bootstrap_servers
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as data_dir:
        started = (
            temporary_broker(settings, Path(data_dir))
            if nodes == 1
            else temporary_cluster(settings, Path(data_dir), nodes)
        )
        with started as bootstrap:
            yield bootstrap


def children(pid: int) -> list[int]:
    """``pid`` and its direct children (the SO_REUSEPORT workers of a multi-process ingress)."""
    found = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


@contextlib.contextmanager
def server(
    command: list[str], env: dict[str, str], health_url: str, ready_timeout_s: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the ``with`` block, once ``health_url`` answers; then SIGTERM."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        if not wait_http_ok(health_url, ready_timeout_s):
            raise RuntimeError(f"{command} did not become ready")
        yield process
    finally:
        process.terminate()
        process.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns of each server (median)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=20, help="seconds of load before rounds")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--processes", type=int, default=1, help="ingress processes")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "wrk is not installed: `make bench` installs it, or apt-get install wrk",
            file=sys.stderr,
        )
        return 2

    env = dict(os.environ)
    bare_port, ingress_port = broker.free_port(), broker.free_port()
    path = f"/webhooks/omicall/{TOKEN}"
    bare_url = f"http://127.0.0.1:{bare_port}{path}"
    url = f"http://127.0.0.1:{ingress_port}{path}"
    bare_command = [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(bare_port)]
    command = [sys.executable, "-m", "callstream", "ingest", "--port", str(ingress_port)]

    with kafka() as bootstrap:
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        asyncio.run(ensure_topics(bootstrap, TOPICS, prefix))
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            CALLSTREAM_WEBHOOK_TOKENS=TOKEN,
            CALLSTREAM_TOPIC_PREFIX=prefix,
            CALLSTREAM_INGEST_PROCESSES=str(args.processes),
        )
        with (
            server(bare_command, dict(os.environ), f"http://127.0.0.1:{bare_port}/healthz"),
            server(command, env, f"http://127.0.0.1:{ingress_port}/readyz") as ingress,
        ):
            run_wrk(bare_url, 2, args.connections, None)  # warm-up
            # The broker starts cold: the JVM compiles its hot paths for the first tens of
            # seconds under load, taking CPU from the two ingress processes (one core here).
            print(f"bench: warming up the broker for {args.warmup} s ...", file=sys.stderr)
            run_wrk(url, args.warmup, args.connections, None)
            bares: list[WrkResult] = []
            fulls: list[WrkResult] = []
            with PeakRss(children(ingress.pid)) as peak:
                for round_ in range(args.rounds):
                    print(f"bench: round {round_ + 1} of {args.rounds} ...", file=sys.stderr)
                    pair = [(bares, bare_url), (fulls, url)]
                    for results, target in pair if round_ % 2 == 0 else reversed(pair):
                        results.append(run_wrk(target, args.duration, args.connections, None))
            ratios = [full.rate / bare.rate for bare, full in zip(bares, fulls, strict=True)]
            ratio = statistics.median(ratios)
            bare, full = median_run(bares), median_run(fulls)
            half_rate = full.rate / 2
            delay = max(args.connections / half_rate * 1000 - full.p50_ms, 0.0)
            half = run_wrk(url, args.duration, args.connections, delay)

    figures = {
        "bare_rate": bare.rate,
        "ingress_rate": full.rate,
        "ratio": ratio,
        "round_ratios": ratios,
        "round_bare_rates": [result.rate for result in bares],
        "round_ingress_rates": [result.rate for result in fulls],
        "rounds": args.rounds,
        "ingress_p50_ms_at_max": full.p50_ms,
        "ingress_p99_ms_at_max": full.p99_ms,
        "half_rate_achieved": half.rate,
        "p99_ms_at_half_rate": half.p99_ms,
        "p50_ms_at_half_rate": half.p50_ms,
        "ingress_peak_rss_mb": peak.peak,
        "errors": sum(result.errors for result in [*bares, *fulls, half]),
        "processes": args.processes,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "targets": TARGETS,
    }
    print_table(
        ["measure", "value", "target"],
        [
            ["bare aiohttp handler, req/s (median round)", bare.rate, ""],
            ["ingress (acks=all), req/s (median round)", full.rate, f">= {TARGETS['rate']:,.0f}"],
            ["ratio ingress / bare (median of rounds)", ratio, f">= {TARGETS['ratio']}"],
            ["ratio per round", " ".join(f"{r:.2f}" for r in ratios), ""],
            ["ingress p99 at max rate, ms", full.p99_ms, ""],
            ["rate for the latency run, req/s", half.rate, "about half the max"],
            ["ingress p99 at that rate, ms", half.p99_ms, f"< {TARGETS['p99_ms']:g}"],
            ["ingress peak RSS, MB", peak.peak, f"< {TARGETS['rss_mb']:g}"],
            ["errors (non-2xx, socket)", figures["errors"], "0"],
        ],
    )
    print(f"wrote {write_results('ingest', figures)}")
    met = (
        figures["ratio"] >= TARGETS["ratio"]
        and full.rate >= TARGETS["rate"]
        and half.p99_ms < TARGETS["p99_ms"]
        and peak.peak < TARGETS["rss_mb"]
        and figures["errors"] == 0
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
