"""Run the worker: create missing topics and check them all, then the Faust worker until
SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import replace
from typing import Any

import faust
from aiokafka.errors import KafkaError

from callstream.kafka.admin import prepare_topics
from callstream.kafka.topiccheck import WantedTopic, registry_topics
from callstream.logs import configure_json_logging
from callstream.processors.app import (
    TABLE,
    WINDOWS_TABLE,
    changelog_topic_name,
    commands_topic_name,
    create_worker_app,
    share_updates_topic_name,
)
from callstream.processors.malloc_tuning import tune_malloc
from callstream.processors.private_api import check_private_api
from callstream.processors.settings import WorkerSettings
from callstream.schemas.topics import CALL_EVENTS, TOPICS, topic

log = logging.getLogger("callstream.processors")
TOPICS_DEADLINE_S = 60.0
# A young collection after 20,000 allocations, not 700; the older ones at their defaults (README,
# Performance: 5,000 and 50,000 measured too).
GC_THRESHOLDS = (20_000, 10, 10)


def worker_topics(settings: WorkerSettings) -> list[WantedTopic]:
    """Every topic the worker uses: the registry's, and its internal ones, each joined to the
    inputs (as many partitions). The agent's commands topic: faust would declare it itself, but
    while the worker joins its group, and under load the first assignment missed it, so the
    timer's commands went unread until a later rebalance. The tables' changelogs: faust would
    create them as well, and never compare their partition count with the inputs' (its check
    runs on faust's own table writes, which the worker does not use). The metrics' share
    updates (docs/metrics.md): shares are on the inputs' partitions, share updates and windows
    on their dimension's."""
    partitions = topic(CALL_EVENTS).partitions
    app_id = settings.app_id
    internal = [
        WantedTopic(commands_topic_name(app_id), partitions, "delete", joined=True),
        WantedTopic(share_updates_topic_name(app_id), partitions, "delete", joined=True),
        *(
            WantedTopic(changelog_topic_name(app_id, table), partitions, "compact", joined=True)
            for table in (TABLE, WINDOWS_TABLE)
        ),
    ]
    return registry_topics([spec.name for spec in TOPICS], settings.topic_prefix) + internal


def prepare_worker_topics(settings: WorkerSettings) -> int:
    """Create the worker's missing topics and check them all; waits (bounded) for the broker
    to answer. Returns the replication factor used, for the topics faust creates itself.
    Raises TopicMismatch when a topic is wrong: the worker must not start."""
    deadline = time.monotonic() + TOPICS_DEADLINE_S
    wanted = worker_topics(settings)
    while True:
        try:
            prepared = asyncio.run(
                prepare_topics(settings.bootstrap_servers, wanted, settings.replication_factor)
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for Kafka to create topics: %r", exc)
            time.sleep(1.0)
            continue
        if prepared.created:
            log.info("created topics: %s", ", ".join(prepared.created))
        return prepared.replication.factor


def logging_config(level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` that faust's Worker applies in place of its own (a
    colour handler on stdout): the services' one JSON handler (callstream/logs.py) on stderr,
    which faust's and aiokafka's loggers reach through the root logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,  # the loggers made at import, aiokafka's and ours
        "handlers": {
            "json": {"()": "callstream.logs.json_log_handler", "stream": "ext://sys.stderr"}
        },
        "root": {"level": level.upper(), "handlers": ["json"]},
    }


def tune_gc() -> None:
    """Python's cyclic collector at its defaults stopped the event loop for 40-145 ms about once a
    second under load (3.2 s in one bench run), most of the ``GET /calls/{call_id}`` tail: each
    full collection walked every object made at start-up (modules, classes, the app) and the
    worker's caches. Those made before it starts are frozen out of the walks, and collections
    run less often (README, Performance)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: WorkerSettings) -> None:
    """Block until the worker is stopped. Raises PrivateApiMissing before touching Kafka when
    the installed faust lacks a name the worker needs."""
    check_private_api()
    configure_json_logging(settings.log_level)  # until faust's Worker applies logging_config
    factor = prepare_worker_topics(settings)
    app = create_worker_app(replace(settings, replication_factor=factor))
    worker = faust.Worker(
        app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config=logging_config(settings.log_level),
    )
    # At WARNING and above faust adds a terminal spinner that sets the root logger to DEBUG, so
    # every debug call in aiokafka and faust builds a log record: a fifth of the worker's CPU.
    worker.spinner = None
    tune_gc()
    tune_malloc()
    worker.execute_from_commandline()
