"""Run the worker: create missing topics, then the Faust worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from aiokafka.errors import KafkaError

from callstream.kafka.admin import ensure_topics
from callstream.processors.app import create_worker_app
from callstream.processors.settings import WorkerSettings
from callstream.schemas.topics import TOPICS

log = logging.getLogger("callstream.processors")
TOPICS_DEADLINE_S = 60.0


def _ensure_topics(settings: WorkerSettings) -> None:
    """The registry's topics, created if missing; waits (bounded) for the broker to answer."""
    deadline = time.monotonic() + TOPICS_DEADLINE_S
    while True:
        try:
            created = asyncio.run(
                ensure_topics(
                    settings.bootstrap_servers,
                    TOPICS,
                    settings.topic_prefix,
                    settings.replication_factor,
                )
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for Kafka to create topics: %r", exc)
            time.sleep(1.0)
            continue
        if created:
            log.info("created topics: %s", ", ".join(created))
        return


def run_worker(settings: WorkerSettings) -> None:
    """Block until the worker is stopped."""
    _ensure_topics(settings)
    app = create_worker_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # At WARNING and above faust adds a terminal spinner that sets the root logger to DEBUG, so
    # every debug call in aiokafka and faust builds a log record: a fifth of the worker's CPU.
    worker.spinner = None
    worker.execute_from_commandline()
