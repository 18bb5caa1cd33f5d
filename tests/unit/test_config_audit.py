"""Config audit (issue #15, check 8): what the code really builds, not what it appears to say.

Every producer the project makes (the ingress's publisher, the worker's faust producer; admin
clients and consumers write nothing) is idempotent with acks=all, and every send has a
deadline; the ingress's body limit and timeouts are settings with values, documented; the
production documentation asks for replication factor 3, min.insync.replicas 2 and no unclean
leader election. The producers are constructed, not started: no broker needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from callstream.ingest.app import PUBLISHER, create_app
from callstream.ingest.settings import IngressSettings
from callstream.processors import batches
from callstream.processors.app import create_worker_app
from callstream.processors.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ALL = -1  # acks=all, as aiokafka keeps it
TOKENS = {"CALLSTREAM_WEBHOOK_TOKENS": "audit-token-1234567890"}


async def _closed(producer: AIOKafkaProducer) -> None:
    await producer.stop()  # never started: releases its client


def _assert_idempotent_all(producer: AIOKafkaProducer) -> None:
    assert producer._txn_manager is not None, "not idempotent"  # aiokafka: enable_idempotence
    assert producer._sender._acks == ALL


@pytest.fixture
async def ingress_producer() -> AsyncIterator[tuple[IngressSettings, AIOKafkaProducer, object]]:
    settings = IngressSettings.from_env(TOKENS)
    publisher = create_app(settings)[PUBLISHER]
    producer = publisher._new_producer()
    try:
        yield settings, producer, publisher
    finally:
        await _closed(producer)


async def test_the_ingress_producer_is_idempotent_with_acks_all_and_a_send_deadline(
    ingress_producer: tuple[IngressSettings, AIOKafkaProducer, object],
) -> None:
    settings, producer, publisher = ingress_producer
    _assert_idempotent_all(producer)
    # Each request's timeout, and the asyncio deadline around each send (an idempotent batch
    # is retried for ever otherwise): both the setting's.
    assert producer._request_timeout_ms == settings.send_timeout_s * 1000
    assert publisher._send_timeout_s == settings.send_timeout_s == 5.0  # type: ignore[attr-defined]


async def test_the_worker_producer_is_idempotent_with_acks_all_and_a_send_deadline(
    tmp_path: Path,
) -> None:
    settings = WorkerSettings.from_env({"CALLSTREAM_DATA_DIR": str(tmp_path)})
    app = create_worker_app(settings)
    producer = app.producer._new_producer()  # what faust starts: the same settings
    try:
        _assert_idempotent_all(producer)
        assert producer._request_timeout_ms == 30_000
    finally:
        await _closed(producer)
    # Retries of an idempotent batch never expire: a flush has its own deadline.
    assert batches.DELIVERY_DEADLINE_S == 120.0
    # The same producer hands the worker's batches over (processors/private_api.py).
    assert app.conf.processing_guarantee.value == "at_least_once"  # no transactional producers


INGRESS_LIMITS = {
    "max_body_bytes": ("CALLSTREAM_MAX_BODY_BYTES", 65536),
    "send_timeout_s": ("CALLSTREAM_SEND_TIMEOUT", 5.0),
    "header_timeout_s": ("CALLSTREAM_HEADER_TIMEOUT", 10.0),
    "body_timeout_s": ("CALLSTREAM_BODY_TIMEOUT", 30.0),
    "keepalive_timeout_s": ("CALLSTREAM_KEEPALIVE_TIMEOUT", 75.0),
    "write_timeout_s": ("CALLSTREAM_WRITE_TIMEOUT", 30.0),
    "max_connections": ("CALLSTREAM_MAX_CONNECTIONS", 1000),
}


def test_the_ingress_limits_and_timeouts_are_settings_with_values_and_documented() -> None:
    defaults = IngressSettings.from_env(TOKENS)
    changed = IngressSettings.from_env(
        {**TOKENS, **{name: "1234" for name, _ in INGRESS_LIMITS.values()}}
    )
    for field, (variable, value) in INGRESS_LIMITS.items():
        assert getattr(defaults, field) == value, field
        assert getattr(changed, field) == 1234, f"{variable} does not set {field}"
        assert f"`{variable}`" in README, f"{variable} is not in the README"
    fields = {f.name for f in dataclasses.fields(IngressSettings)}
    timeouts = {name for name in fields if name.endswith("timeout_s")}
    assert timeouts <= set(INGRESS_LIMITS), f"a timeout this audit does not know: {timeouts}"


@pytest.mark.parametrize(
    "stated",
    [
        "CALLSTREAM_REPLICATION_FACTOR=3",
        "`default.replication.factor=3`",
        "`min.insync.replicas=2`",
        "`unclean.leader.election.enable=false`",
    ],
)
def test_the_production_settings_are_stated(stated: str) -> None:
    production = README[README.index("**On a production cluster**") :]
    assert stated in production[:2000]
