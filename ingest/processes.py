"""Several ingress processes on one port (``CALLSTREAM_INGEST_PROCESSES`` > 1): the handler is
CPU-bound, so this is how the ingress uses more than one core. The kernel spreads connections
over them (SO_REUSEPORT); each has its own producer.

``callstream ingest`` checks its settings, then becomes (exec) this module's supervisor: a
small process (about 15 MB: it imports neither aiohttp nor Kafka's client) that starts the
serving processes (spawned, so that each imports prometheus_client with
``PROMETHEUS_MULTIPROC_DIR`` set: a scrape then shows all of them summed, ingest/metrics.py),
passes SIGINT/SIGTERM on, and waits. One that exits on its own stops the others, and the
ingress exits 1: a supervisor (systemd, the orchestrator) restarts the whole, rather than a
port served at a fraction of its capacity without anyone knowing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import tempfile
from multiprocessing.connection import wait
from types import FrameType

# prometheus_client reads it when a metric is made: set, every process writes its figures there.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def become_supervisor(host: str, port: int, processes: int) -> None:
    """Replace this process (same pid, so signals reach the supervisor) by :func:`supervise`."""
    argv = [sys.executable, "-m", "callstream.ingest.processes", host, str(port), str(processes)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def serve_one(host: str, port: int) -> None:
    """One serving process (imported here, in the child: the supervisor stays small)."""
    from callstream.ingest.server import serve

    serve(host, port, reuse_port=True)


def supervise(host: str, port: int, processes: int) -> int:
    """Run ``processes`` serving processes until a signal stops them (0) or one exits on its own
    (1)."""
    with tempfile.TemporaryDirectory(prefix="callstream-ingress-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory
        context = multiprocessing.get_context("spawn")
        children = [context.Process(target=serve_one, args=(host, port)) for _ in range(processes)]
        stopping = False

        def stop(_signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
            nonlocal stopping
            stopping = True
            for child in children:
                if child.pid is not None and child.exitcode is None:
                    os.kill(child.pid, signal.SIGTERM)

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        for child in children:
            child.start()
        failed = False
        running = list(children)
        while running:
            ended = wait([child.sentinel for child in running])
            for child in [c for c in running if c.sentinel in ended]:
                child.join()
                running.remove(child)
                _forget(child.pid, directory)
                if not stopping:
                    _log_exit(child.pid, child.exitcode)
                    failed = True
                    stop()
        return 1 if failed else 0


def _forget(pid: int | None, directory: str) -> None:
    """Drop an exited process's live gauges (prometheus_client keeps its counters)."""
    from prometheus_client.multiprocess import mark_process_dead

    if pid is not None:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _log_exit(pid: int | None, code: int | None) -> None:
    """The JSON log line of a serving process that exited on its own."""
    import logging

    from callstream.logs import configure_json_logging
    from callstream.settings import env_log_level

    configure_json_logging(env_log_level(os.environ))
    logging.getLogger("callstream.ingest").error(
        "ingress process %s exited with code %s: stopping the others", pid, code
    )


if __name__ == "__main__":
    bound_host, bound_port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.exit(supervise(bound_host, bound_port, count))
