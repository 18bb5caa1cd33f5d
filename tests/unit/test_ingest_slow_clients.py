"""Slow and surplus connections to the ingress as it is served (``listening``): header, body
and keep-alive timeouts, and the per-process connection bound. No Kafka: the publisher here
acknowledges every send at once."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
import pytest

from tests.ingress_served import EVENT, WEBHOOK, get, metric, serving, webhook
from tests.raw_http import (
    RawResponse,
    close,
    connect,
    parse_response,
    read_response,
    read_until_closed,
    request,
    still_open_after,
    trickle,
)

# Generous margins over each timeout: the deadline is what is tested, not scheduling jitter.
LATE_S = 5.0  # a loaded 2-core machine (helpers, CI) has run late by more than 1.5 s


async def trickle_until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes, within_s: float
) -> tuple[bytes, float]:
    """Send ``data`` a byte every 50 ms until the server closes the connection (AssertionError
    if not within ``within_s``): what it answered, and how long after the first byte."""
    began = time.monotonic()
    trickling = asyncio.create_task(trickle(writer, data, every_s=0.05))
    try:
        answer = await read_until_closed(reader, within_s)
    finally:
        trickling.cancel()
        await close(writer)
    return answer, time.monotonic() - began


def assert_408_and_close(answer: bytes, code: str) -> None:
    response = parse_response(answer)
    assert response.status == 408
    assert response.headers["connection"] == "close"
    assert orjson.loads(response.body)["error"] == code


@pytest.mark.parametrize("after_a_request", [False, True], ids=["first", "keep-alive"])
async def test_headers_that_trickle_get_408_and_a_close_at_the_header_timeout(
    after_a_request: bool,
) -> None:
    async with serving(header_timeout_s=0.5, keepalive_timeout_s=30.0) as port:
        reader, writer = await connect(port)
        if after_a_request:
            writer.write(webhook())
            assert (await read_response(reader)).status == 200
            # Idle longer than the header timeout: idle time is not header time.
            assert await still_open_after(reader, 0.8)
        slow = b"POST " + WEBHOOK.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 500
        answer, took = await trickle_until_closed(reader, writer, slow, within_s=0.5 + LATE_S)
        counters = (await get(port, "/metrics")).body

    assert took >= 0.45  # from the request's first byte, not from the connection's start
    assert_408_and_close(answer, "header_timeout")
    assert metric(counters, 'callstream_ingress_closed_connections_total{reason="header_timeout"}')


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout() -> None:
    async with serving(header_timeout_s=0.5) as port:
        reader, writer = await connect(port)
        began = time.monotonic()
        try:
            answer = await read_until_closed(reader, within_s=0.5 + LATE_S)
        finally:
            await close(writer)
        took = time.monotonic() - began
    assert answer == b""  # nothing was asked: nothing to answer
    assert took >= 0.45


async def test_an_idle_keep_alive_connection_lasts_the_keep_alive_timeout_then_closes() -> None:
    async with serving(header_timeout_s=0.3, keepalive_timeout_s=1.2) as port:
        reader, writer = await connect(port)
        try:
            writer.write(webhook())
            assert (await read_response(reader)).status == 200
            assert await still_open_after(reader, 0.6)  # past the header timeout
            writer.write(webhook())
            assert (await read_response(reader)).status == 200  # the same connection
            idle_from = time.monotonic()
            answer = await read_until_closed(reader, within_s=1.2 + LATE_S)
            idle = time.monotonic() - idle_from
        finally:
            await close(writer)
    assert answer == b""
    assert idle >= 1.1


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_that_trickles_gets_408_and_a_close_at_the_body_timeout(
    framing: str,
) -> None:
    if framing == "chunked":
        head = request(
            "POST", WEBHOOK, Content_Type="application/json", Transfer_Encoding="chunked"
        )
        body = b"".join(b"1\r\n" + bytes([byte]) + b"\r\n" for byte in EVENT)
    else:
        head, _, body = webhook().partition(b"\r\n\r\n")
        head += b"\r\n\r\n"
    async with serving(header_timeout_s=5.0, body_timeout_s=0.5) as port:
        reader, writer = await connect(port)
        writer.write(head)
        answer, took = await trickle_until_closed(reader, writer, body, within_s=0.5 + LATE_S)
    assert_408_and_close(answer, "body_timeout")
    assert took >= 0.45


async def test_connections_over_the_bound_get_503_at_once_and_are_counted() -> None:
    async with serving(max_connections=3) as port:
        held = [await connect(port) for _ in range(3)]
        try:
            for reader, writer in held:  # each admitted and served
                writer.write(request("GET", "/healthz"))
                assert (await read_response(reader)).status == 200
            reader, writer = await connect(port)
            began = time.monotonic()
            answer = await read_until_closed(reader, within_s=LATE_S)
            took = time.monotonic() - began
            await close(writer)
            refused = parse_response(answer)
            assert refused.status == 503
            assert refused.headers["connection"] == "close"
            assert refused.headers["retry-after"]
            assert orjson.loads(refused.body)["error"] == "too_many_connections"
            assert took < 0.5

            reader, writer = held[0]
            writer.write(request("GET", "/metrics"))
            counters = (await read_response(reader)).body
            over_limit = 'callstream_ingress_closed_connections_total{reason="over_limit"}'
            assert metric(counters, over_limit) == 1.0
            assert metric(counters, "callstream_ingress_open_connections") == 3.0

            await close(held.pop()[1])
            assert (await get_when_admitted(port, "/healthz")).status == 200
        finally:
            for _, writer in held:
                await close(writer)


async def get_when_admitted(port: int, path: str, deadline_s: float = 5.0) -> RawResponse:
    """``get``, again while the server still counts a connection the client closed."""
    deadline = time.monotonic() + deadline_s
    while (response := await get(port, path)).status == 503:
        assert time.monotonic() < deadline, "a freed connection slot was never reused"
        await asyncio.sleep(0.05)
    return response


async def test_pipelined_and_keep_alive_webhooks_are_all_answered() -> None:
    async with serving(header_timeout_s=0.5) as port:
        reader, writer = await connect(port)
        try:
            writer.write(webhook() * 3)
            statuses = [(await read_response(reader)).status for _ in range(3)]
            writer.write(webhook())
            statuses.append((await read_response(reader)).status)
        finally:
            await close(writer)
    assert statuses == [200, 200, 200, 200]


async def test_a_client_that_never_reads_its_responses_is_dropped_at_the_write_timeout() -> None:
    # While a handler waits to write (the client's socket buffer full) no other timer runs.
    async with serving(write_timeout_s=0.5, keepalive_timeout_s=30.0) as port:
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(client, ("127.0.0.1", port))
            # Megabytes of answers to 400 small requests, none of them read.
            await loop.sock_sendall(client, request("GET", "/openapi.json") * 400)
            dropped = 'callstream_ingress_closed_connections_total{reason="write_timeout"}'
            deadline = time.monotonic() + 0.5 + LATE_S
            # The abort counts the drop at once but releases the connection a loop turn later
            # (connection_lost), as it does an earlier scrape's: wait for both, only /metrics'
            # own connection left open.
            while True:
                counters = (await get(port, "/metrics")).body
                state = (
                    metric_or_zero(counters, dropped),
                    metric(counters, "callstream_ingress_open_connections"),
                )
                if state == (1.0, 1.0):
                    break
                assert time.monotonic() < deadline, f"(dropped, open) stayed {state}"
                await asyncio.sleep(0.1)
        finally:
            client.close()


def metric_or_zero(exposition: bytes, line_start: str) -> float:
    try:
        return metric(exposition, line_start)
    except AssertionError:
        return 0.0
