"""Run the worker: create missing topics, then the Faust worker until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from callstream.kafka.admin import create_missing, ensure_topics
from callstream.processors.app import commands_topic_name, create_worker_app
from callstream.processors.settings import WorkerSettings
from callstream.schemas.topics import CALL_EVENTS, TOPICS, topic

log = logging.getLogger("callstream.processors")
TOPICS_DEADLINE_S = 60.0


def _commands_topic(settings: WorkerSettings) -> NewTopic:
    """The agent's internal commands topic. faust would declare it itself, but while the worker
    joins its group: under load the first assignment missed it, and the timer's commands went
    unread until a later rebalance."""
    return NewTopic(
        commands_topic_name(settings.app_id),
        num_partitions=topic(CALL_EVENTS).partitions,
        replication_factor=settings.replication_factor,
    )


async def _ensure_all_topics(settings: WorkerSettings) -> list[str]:
    registry = await ensure_topics(
        settings.bootstrap_servers, TOPICS, settings.topic_prefix, settings.replication_factor
    )
    return registry + await create_missing(settings.bootstrap_servers, [_commands_topic(settings)])


def _ensure_topics(settings: WorkerSettings) -> None:
    """The registry's topics and the commands topic, created if missing; waits (bounded) for
    the broker to answer."""
    deadline = time.monotonic() + TOPICS_DEADLINE_S
    while True:
        try:
            created = asyncio.run(_ensure_all_topics(settings))
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
