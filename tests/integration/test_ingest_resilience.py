"""The ingress when Kafka goes away and comes back, on SIGTERM, and without a token."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import orjson

from callstream.kafka import broker
from callstream.kafka.release import KafkaRelease
from callstream.schemas.topics import CALL_EVENTS, topic_names
from tests.integration.cli_helpers import callstream
from tests.integration.ingress_support import (
    TOKEN,
    Ingress,
    ingress_process,
    ingress_settings,
    lacking,
    request_ids,
    running_ingress,
    sample,
    sent_as,
)
from tests.kafka_support import read_until


async def test_broker_down_gives_503_in_time_and_recovery_needs_no_restart(
    kafka_release: KafkaRelease, tmp_path: Path
) -> None:
    data_dir = tmp_path / "kafka"
    port = broker.free_port()
    started = await asyncio.to_thread(broker.start, data_dir, kafka_release, port=port)
    assert started.bootstrap is not None
    settings = ingress_settings(started.bootstrap, send_timeout_s=2.0, ready_window_s=3.0)
    body = sample("event-ringing.json")
    sent: list[str] = []
    acked: set[str] = set()

    async def post(ingress: Ingress) -> aiohttp.ClientResponse:
        """POST the body with a new request id, noted as sent and, on a 200, as acknowledged."""
        sent.append(f"outage-{len(sent)}")
        response = await ingress.client.post(ingress.url(), data=body, headers=sent_as(sent[-1]))
        if response.status == 200:
            acked.add(sent[-1])
        return response

    try:
        async with running_ingress(settings) as ingress:
            before = await post(ingress)
            assert before.status == 200

            await asyncio.to_thread(broker.stop, data_dir)
            began = time.monotonic()
            down = await post(ingress)
            took = time.monotonic() - began
            assert down.status == 503
            assert down.headers["Retry-After"]
            assert (await down.json())["error"] == "kafka_unavailable"
            assert took < settings.send_timeout_s + 1.5

            deadline = time.monotonic() + 15
            while (await ingress.client.get("/readyz")).status == 200:
                assert time.monotonic() < deadline, "/readyz never noticed the broker is gone"
                await asyncio.sleep(0.2)

            await asyncio.to_thread(broker.start, data_dir, kafka_release, port=port)
            deadline = time.monotonic() + 60
            while True:
                again = await post(ingress)
                if again.status == 200:
                    break
                assert again.status == 503
                assert time.monotonic() < deadline, "the ingress did not recover"
                await asyncio.sleep(0.2)
            assert (await ingress.client.get("/readyz")).status == 200
            records = await read_until(
                started.bootstrap, ingress.topics[CALL_EVENTS], lacking(acked), settle_s=0.5
            )
        # The request before the outage and the one after it; a 503'd send may land as well
        # (at-least-once: the provider retries, the processors deduplicate).
        assert len(acked) == 2
        assert acked <= set(request_ids(records))
        assert set(request_ids(records)) <= set(sent)
        assert all(record.value == body for record in records)
    finally:
        await asyncio.to_thread(broker.stop, data_dir)


async def test_sigterm_lets_in_flight_requests_finish_and_loses_no_ack(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    prefix = f"sigterm{os.getpid()}{time.monotonic_ns() % 100000}."
    topic = topic_names(prefix)[CALL_EVENTS]
    template = orjson.loads(sample("event-ringing.json"))
    log = tmp_path / "ingress.log"
    async with (
        ingress_process(cli_env, kafka_bootstrap, prefix, log, ready_s=30) as ingress,
        aiohttp.ClientSession() as session,
    ):
        base, process = ingress.url, ingress.process

        async def post(i: int) -> int:
            body = orjson.dumps({**template, "call_uuid": f"term-{i}"})
            try:
                async with session.post(
                    f"{base}/webhooks/omicall/{TOKEN}", data=body, headers=sent_as(f"term-{i}")
                ) as response:
                    return response.status
            except aiohttp.ClientError:
                return 0  # refused once the server stopped accepting: never acknowledged

        in_flight = [asyncio.create_task(post(i)) for i in range(300)]
        # SIGTERM once some requests are answered and the rest are in flight.
        done, _ = await asyncio.wait(in_flight, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert done
        process.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*in_flight)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0, statuses
    acked = {f"term-{i}" for i, status in enumerate(statuses) if status == 200}
    assert acked
    assert set(statuses) <= {200, 0, 503}
    records = await read_until(kafka_bootstrap, topic, lacking(acked), settle_s=1.0)
    stored = request_ids(records)
    assert acked <= set(stored)
    assert set(stored) <= {f"term-{i}" for i in range(len(statuses))}


def test_ingest_refuses_to_start_without_a_token(cli_env: dict[str, str]) -> None:
    env = {key: value for key, value in cli_env.items() if key != "CALLSTREAM_WEBHOOK_TOKENS"}
    run = callstream("ingest", "--port", str(broker.free_port()), env=env, timeout=30)
    assert run.code == 1
    assert "no webhook token configured (CALLSTREAM_WEBHOOK_TOKENS)" in run.stderr
