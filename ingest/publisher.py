"""The ingress's one Kafka producer: acks=all, idempotent, a deadline on every send.

An idempotent aiokafka send can wait forever when the broker is gone (its batches no longer
expire), so each send has its own deadline and the caller answers 503. The producer connects in
the background: the ingress starts, and recovers, whether or not the broker is up. Nothing is
published before the topics are prepared (created, checked): the broker creates none itself,
and wrong ones would split a call in two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from callstream.kafka.partitioning import default_partition
from callstream.kafka.topiccheck import TopicMismatch

log = logging.getLogger("callstream.ingest.publisher")

Headers = list[tuple[str, bytes]]
RECONNECT_BACKOFF_S = 1.0
PREPARE_RETRY_S = 5.0  # topics that are wrong: an operator has to fix them first
NOT_CONNECTED = "not connected to Kafka yet"
NOT_REACHABLE = "Kafka is not reachable"
NOT_PREPARED = "Kafka's topics could not be created (see the ingress log)"
MISMATCHED = "Kafka's topics are not what callstream needs (see the ingress log)"
HEARTBEAT_INTERVAL_S = 2.0


class PublishUnavailable(Exception):
    """The broker did not acknowledge in time, or is not reachable: answer 503."""


@dataclass(frozen=True)
class Ack:
    topic: str
    partition: int
    offset: int


class Publisher:
    """Owns the producer; ``publish`` returns only once the broker has acknowledged."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        send_timeout_s: float,
        linger_ms: int,
        prepare: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """``prepare`` runs once connected, before the publisher is ready (creating and
        checking topics); it is retried until it succeeds, and nothing is published before."""
        self._bootstrap = bootstrap_servers
        self._prepare = prepare
        self._send_timeout_s = send_timeout_s
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_broker_contact = float("-inf")
        self._closing = False
        self._first_attempt: asyncio.Future[None] | None = None
        self._unready = NOT_CONNECTED

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            request_timeout_ms=max(int(self._send_timeout_s * 1000), 1000),
            retry_backoff_ms=100,
            max_batch_size=256 * 1024,
            client_id="callstream-ingress",
        )

    async def start(self) -> None:
        """Connect in the background; returns once the first attempt is over, connected or not.
        Raises TopicMismatch when the broker answered and the topics are wrong: the ingress
        must not start on them."""
        self._first_attempt = asyncio.get_running_loop().create_future()
        self._connector = asyncio.create_task(self._connect_forever(), name="kafka-connect")
        self._heartbeat = asyncio.create_task(self._heartbeat_forever(), name="kafka-heartbeat")
        try:
            await self._first_attempt
        except TopicMismatch:
            await self.stop()
            raise

    def _attempted(self, error: TopicMismatch | None = None) -> bool:
        """Tell ``start`` the first attempt is over; False when it was told already."""
        first = self._first_attempt
        if first is None or first.done():
            return False
        if error is None:
            first.set_result(None)
        else:
            first.set_exception(error)
        return True

    async def _connect_forever(self) -> None:
        try:
            await self._connect()
        finally:
            self._attempted()  # whatever happened, ``start`` must not wait for ever

    async def _connect(self) -> None:
        while not self._closing:
            producer = self._new_producer()
            try:
                await producer.start()
            except KafkaError as exc:
                log.warning("kafka not reachable yet", extra={"error": repr(exc)})
                await self._not_ready(producer, NOT_REACHABLE)
                await asyncio.sleep(RECONNECT_BACKOFF_S)
                continue
            if self._prepare is not None:
                try:
                    await self._prepare()
                except TopicMismatch as mismatch:
                    if await self._not_ready(producer, MISMATCHED, mismatch):
                        return  # the first attempt: start() raises it
                    log.error("topics are wrong", extra={"error": str(mismatch)})
                    await asyncio.sleep(PREPARE_RETRY_S)
                    continue
                except Exception as exc:
                    log.warning("could not prepare topics", extra={"error": repr(exc)})
                    await self._not_ready(producer, NOT_PREPARED)
                    await asyncio.sleep(RECONNECT_BACKOFF_S)
                    continue
            self._producer = producer
            self._last_broker_contact = time.monotonic()
            self._attempted()
            log.info("kafka producer connected", extra={"bootstrap": self._bootstrap})
            return

    async def _not_ready(
        self, producer: AIOKafkaProducer, reason: str, error: TopicMismatch | None = None
    ) -> bool:
        """Close ``producer`` and keep why the publisher is not ready; then end the first
        attempt, with ``error`` for ``start`` to raise. False when the first attempt was over."""
        self._unready = reason
        with contextlib.suppress(Exception):
            await producer.stop()
        return self._attempted(error)

    async def _heartbeat_forever(self) -> None:
        """Ask the broker for metadata now and then, so readiness reflects a dead broker."""
        while not self._closing:
            producer = self._producer
            if producer is not None:
                try:
                    await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2.0)
                    self._last_broker_contact = time.monotonic()
                except (TimeoutError, KafkaError):
                    pass
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    def ready(self, window_s: float) -> bool:
        """Connected, and the broker answered within the last ``window_s`` seconds."""
        return (
            self._producer is not None and time.monotonic() - self._last_broker_contact <= window_s
        )

    @property
    def unready_reason(self) -> str:
        """Why ``ready`` says no: not connected, topics not prepared, or no recent answer."""
        return self._unready if self._producer is None else NOT_REACHABLE

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers) -> Ack:
        """Send and wait for the broker's ack, or raise PublishUnavailable by the deadline."""
        producer = self._producer
        if producer is None:
            raise PublishUnavailable(self._unready)
        try:
            # asyncio.timeout, not wait_for: no extra task per request on the hot path.
            async with asyncio.timeout(self._send_timeout_s):
                metadata = await producer.send_and_wait(
                    topic,
                    value,
                    key=key,
                    partition=default_partition(producer, topic, key),
                    headers=headers,
                )
        except TimeoutError:
            raise PublishUnavailable(
                f"no ack from Kafka within {self._send_timeout_s:g} s"
            ) from None
        except OutOfOrderSequenceNumber:
            # aiokafka #1017: an idempotent producer can wedge after a broker blip; replace it.
            self._replace_producer(producer)
            raise PublishUnavailable("Kafka producer reset after a sequence error") from None
        except KafkaError as exc:
            raise PublishUnavailable(f"Kafka error: {exc.__class__.__name__}") from None
        self._last_broker_contact = time.monotonic()
        return Ack(metadata.topic, metadata.partition, metadata.offset)

    def _replace_producer(self, broken: AIOKafkaProducer) -> None:
        current = self._producer
        if current is None or current is not broken or self._closing:
            return
        self._producer = None
        self._unready = NOT_CONNECTED
        asyncio.create_task(current.stop())  # noqa: RUF006 - fire and forget; errors are moot
        self._connector = asyncio.create_task(self._connect_forever(), name="kafka-connect")

    async def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Flush what is in flight (bounded), then close the producer."""
        self._closing = True
        for task in (self._connector, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            await asyncio.wait_for(producer.flush(), timeout=flush_timeout_s)
        except (TimeoutError, KafkaError):
            log.error("could not flush the Kafka producer before closing")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=flush_timeout_s)
