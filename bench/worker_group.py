"""Worker processes in one consumer group, started together, and the CPU each process took:
what bench/processors.py's scale-out row runs (two workers against one, with the broker
sharing the machine's cores)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from callstream.health import http_ok
from callstream.kafka import broker

READY_TIMEOUT_S = 120.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kafka_pids(data_dir_part: str) -> list[int]:
    """The Kafka processes whose command line names a path containing ``data_dir_part`` (the
    bench's temporary brokers, not any other on the machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes()
            if b"kafka.Kafka" in command and data_dir_part.encode() in command:
                found.append(int(entry.name))
    return sorted(found)


@dataclass
class CpuMeter:
    """CPU time of some processes from now on, each as a share of one core."""

    pids: dict[str, int]
    started: float = field(default_factory=time.perf_counter)
    at_start: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        self.at_start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def shares(self, until: float | None = None) -> dict[str, float]:
        """Each process's CPU seconds since the start over the wall seconds (1.0: one core)."""
        wall = (until or time.perf_counter()) - self.started
        return {
            name: (cpu_seconds(pid) - self.at_start[name]) / wall for name, pid in self.pids.items()
        }


@dataclass
class Group:
    """Running workers: their processes and web ports, and from when the first was ready
    (it consumes from then on), the CPU of each and of the other processes metered."""

    processes: list[subprocess.Popen[bytes]]
    ports: list[int]
    meter: CpuMeter

    @property
    def first_ready(self) -> float:
        return self.meter.started


@contextlib.contextmanager
def worker_group(
    count: int, env: dict[str, str], data_dir: Path, others: dict[str, int]
) -> Iterator[Group]:
    """``count`` ``callstream worker`` processes with one app id (one consumer group), each its
    own data dir and port, for the block once every one is ready; SIGTERM after. The meter
    names them ``worker 1`` to ``worker N``, beside ``others``."""
    ports = [broker.free_port() for _ in range(count)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, port in enumerate(ports):
            own = {**env, "CALLSTREAM_DATA_DIR": str(data_dir / f"worker-{index}")}
            command = [sys.executable, "-m", "callstream", "worker", "--web-port", str(port)]
            processes.append(subprocess.Popen(command, env=own, stdout=subprocess.DEVNULL))
        urls = [f"http://127.0.0.1:{port}/readyz" for port in ports]
        waiting, deadline = set(urls), time.monotonic() + READY_TIMEOUT_S
        meter = None
        while waiting:
            if exited := [p.returncode for p in processes if p.poll() is not None]:
                raise RuntimeError(f"a worker exited while starting (exit codes {exited})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready within {READY_TIMEOUT_S:.0f} s: {waiting}")
            waiting -= {url for url in waiting if http_ok(url)}
            if len(waiting) < count and meter is None:
                workers = {f"worker {i + 1}": p.pid for i, p in enumerate(processes)}
                meter = CpuMeter({**workers, **others})
            time.sleep(0.05)
        assert meter is not None  # noqa: S101  # set when the first of them answered
        yield Group(processes, ports, meter)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
