"""A bounded slowloris on loopback against `callstream ingest` on the session's three-node
cluster (``kafka_cluster``), while a provider posts webhooks.

About 200 slow connections (headers a byte at a time, nothing at all, a body a byte at a
time), each reconnecting whenever the ingress cuts it off, as an attacker would. Webhooks
posted meanwhile must all get 200, about as fast as without the attack, and every slow
connection must be cut off at its deadline.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.cluster_support import LocalCluster
from tests.integration.ingress_support import TOKEN, ingress_process, sample
from tests.raw_http import close, connect, parse_response, read_until_closed, request, trickle

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5
LATE_S = 2.0  # how late a cut-off may come on a busy 2-core host
TRICKLING, IDLE, SLOW_BODY = 120, 40, 40
EVERY_S = 0.2  # one byte per slow connection this often: 800 bytes a second in all
WEBHOOK = f"/webhooks/omicall/{TOKEN}"
JSON = {"Content-Type": "application/json"}


@dataclass
class Attack:
    """What the slow connections saw: how long each was held, and how it ended."""

    connected: int = 0
    held_s: dict[str, list[float]] = field(default_factory=dict)
    endings: dict[str, set[str]] = field(default_factory=dict)
    cut_off: dict[str, set[int]] = field(default_factory=dict)  # which connections, by kind

    def record(self, kind: str, index: int, held_s: float, answer: bytes) -> None:
        ending = "closed" if not answer else orjson.loads(parse_response(answer).body)["error"]
        self.held_s.setdefault(kind, []).append(held_s)
        self.endings.setdefault(kind, set()).add(ending)
        self.cut_off.setdefault(kind, set()).add(index)


Sender = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def _slow_connection(port: int, attack: Attack, index: int, kind: str, send: Sender) -> None:
    """Connect, ``send`` slowly until the ingress cuts the connection off, record; again."""
    while True:
        reader, writer = await connect(port)
        began = time.monotonic()
        attack.connected += 1
        sending = asyncio.create_task(send(writer))
        try:
            answer = await read_until_closed(reader, within_s=60)
        finally:
            attack.connected -= 1
            sending.cancel()
            await close(writer)
        attack.record(kind, index, time.monotonic() - began, answer)


async def _trickle_headers(writer: asyncio.StreamWriter) -> None:
    await trickle(
        writer, b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nX-Slow: " + b"a" * 999, EVERY_S
    )


async def _send_nothing(_writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()


async def _trickle_body(writer: asyncio.StreamWriter) -> None:
    body = b'{"pad": "' + b"a" * 2000 + b'"}'
    head, _, _ = request("POST", WEBHOOK, body, Content_Type="application/json").partition(
        b"\r\n\r\n"
    )
    writer.write(head + b"\r\n\r\n")
    await trickle(writer, body, EVERY_S)


@asynccontextmanager
async def slowloris(port: int) -> AsyncIterator[Attack]:
    """The slow connections, all connected before the block starts."""
    attack = Attack()
    kinds: list[tuple[str, Sender]] = (
        [("headers", _trickle_headers)] * TRICKLING
        + [("idle", _send_nothing)] * IDLE
        + [("body", _trickle_body)] * SLOW_BODY
    )
    tasks = [
        asyncio.create_task(_slow_connection(port, attack, index, kind, send))
        for index, (kind, send) in enumerate(kinds)
    ]
    try:
        deadline = time.monotonic() + 10
        while attack.connected < len(kinds):
            assert time.monotonic() < deadline, f"only {attack.connected} slow connections"
            await asyncio.sleep(0.01)
        yield attack
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _post_webhooks(session: aiohttp.ClientSession, base: str, for_s: float) -> list[float]:
    """Post webhooks one after another for ``for_s``; each one's latency. All must get 200."""
    template = orjson.loads(sample("event-ringing.json"))
    latencies = []
    until = time.monotonic() + for_s
    while time.monotonic() < until:
        body = orjson.dumps({**template, "call_uuid": f"loris-{time.monotonic_ns()}"})
        began = time.monotonic()
        async with session.post(f"{base}{WEBHOOK}", data=body, headers=JSON) as response:
            assert response.status == 200, await response.text()
            await response.read()
        latencies.append(time.monotonic() - began)
    return latencies


def _open_connections(exposition: str) -> float:
    for line in exposition.splitlines():
        if line.startswith("callstream_ingress_open_connections "):
            return float(line.split()[1])
    raise AssertionError("no open-connections gauge in /metrics")


@pytest.mark.reliability
async def test_a_slowloris_is_cut_off_while_webhooks_keep_their_latency(
    kafka_cluster: LocalCluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "CALLSTREAM_HEADER_TIMEOUT": str(HEADER_TIMEOUT_S),
        "CALLSTREAM_BODY_TIMEOUT": str(BODY_TIMEOUT_S),
    }
    prefix = f"loris{uuid.uuid4().hex[:8]}."
    log = tmp_path / "ingress.log"
    async with ingress_process(env, kafka_cluster.bootstrap, prefix, log, ready_s=30) as ingress:
        port, base = ingress.port, ingress.url
        async with aiohttp.ClientSession() as session:
            await _post_webhooks(session, base, for_s=0.5)  # warm: topics, producer, pool
            baseline = await _post_webhooks(session, base, for_s=3.0)
            async with slowloris(port) as attack:
                async with session.get(f"{base}/metrics") as response:
                    metrics_during = await response.text()
                # Long enough for every slow connection to meet its deadline at least once.
                during = await _post_webhooks(session, base, for_s=BODY_TIMEOUT_S + LATE_S + 1)
    assert ingress.process.returncode == 0  # stopped by SIGTERM, cleanly

    usual = statistics.median(baseline), statistics.quantiles(baseline, n=20)[-1]
    attacked = statistics.median(during), statistics.quantiles(during, n=20)[-1]
    print(f"median, p95 (s): without {usual}, during {attacked}; {len(during)} webhooks")
    assert attacked[0] <= 3 * usual[0] + 0.005
    assert attacked[1] <= 3 * usual[1] + 0.010
    assert max(during) < 0.5
    # Every slow connection was cut off at its deadline, with the answer that fits.
    assert attack.endings == {
        "headers": {"header_timeout"},
        "idle": {"closed"},
        "body": {"body_timeout"},
    }
    cut_off = {kind: len(indexes) for kind, indexes in attack.cut_off.items()}
    assert cut_off == {"headers": TRICKLING, "idle": IDLE, "body": SLOW_BODY}
    assert max(attack.held_s["headers"] + attack.held_s["idle"]) < HEADER_TIMEOUT_S + LATE_S
    assert max(attack.held_s["body"]) < BODY_TIMEOUT_S + LATE_S
    # The ingress held them all at once (and the poster's connection).
    assert _open_connections(metrics_during) > TRICKLING + IDLE + SLOW_BODY
