"""The ingress against clients that break HTTP: bytes an HTTP client library would not send, a
client that leaves mid-body, a body announced far over the limit. Raw sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from callstream.ingest.auth import parse_signing_secret
from callstream.logs import json_log_handler
from tests.integration.ingress_support import (
    TOKEN,
    ingress_settings,
    serving_ingress,
    wait_until,
)
from tests.raw_http import exchange, parse_response

REQUESTS = "callstream_ingress_requests_total"
BY_PATH = "/webhooks/omicall/{token}"


def _request(
    target: bytes,
    headers: bytes = b"",
    body: bytes = b"{}",
    *,
    length: int | None = None,
    content_type: bytes = b"application/json",
) -> bytes:
    size = len(body) if length is None else length
    return (
        b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Type: " + content_type + b"\r\n" + headers + b"Content-Length: %d\r\n\r\n" % size
    ) + body


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """Everything logged, at DEBUG, through the handler ``configure_json_logging`` installs."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = json_log_handler(stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def _ours(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    """The lines of the web server and our handler (not the Kafka client's)."""
    return [
        line
        for line in lines
        if str(line["logger"]).startswith("aiohttp.") or line["logger"] == "callstream.ingest"
    ]


async def test_non_utf8_bytes_in_auth_headers_are_a_401_not_a_500(kafka_bootstrap: str) -> None:
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    settings = ingress_settings(kafka_bootstrap, signing_key=parse_signing_secret(secret))
    now = b"%d" % time.time()
    by_path = b"/webhooks/omicall/" + TOKEN.encode()
    cases = [
        (b"/webhooks/omicall", b"X-Callstream-Token: \xff\r\n", "unauthorized"),
        (
            by_path,
            b"webhook-id: m1\r\nwebhook-timestamp: "
            + b"9" * 400
            + b"\r\nwebhook-signature: v1,x\r\n",
            "bad_signature",
        ),
        (
            by_path,
            b"webhook-id: m\xff\r\nwebhook-timestamp: " + now + b"\r\nwebhook-signature: v1,x\r\n",
            "bad_signature",
        ),
        (
            by_path,
            b"webhook-id: m1\r\nwebhook-timestamp: " + now + b"\r\nwebhook-signature: v1,\xff\r\n",
            "bad_signature",
        ),
    ]
    async with serving_ingress(settings) as ingress:
        for target, headers, code in cases:
            raw = await exchange(ingress.port, _request(target, headers))
            answer = parse_response(raw)
            assert (answer.status, orjson.loads(answer.body)["error"]) == (401, code), raw
        assert ingress.metric(REQUESTS, route="/webhooks/omicall", status="401") == 1
        assert ingress.metric(REQUESTS, route=BY_PATH, status="401") == 3
        assert ingress.metric(REQUESTS, route=BY_PATH, status="500") is None


async def test_a_client_leaving_mid_body_is_counted_apart_and_not_logged_as_an_error(
    kafka_bootstrap: str, service_log: io.StringIO
) -> None:
    async with serving_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        _, writer = await asyncio.open_connection("127.0.0.1", ingress.port)
        writer.write(_request(b"/webhooks/omicall/" + TOKEN.encode(), body=b'{"a"', length=1000))
        await writer.drain()
        in_flight = "callstream_ingress_in_flight_requests"
        await wait_until(lambda: ingress.metric(in_flight) == 1, "the handler reading the body")
        writer.close()
        await wait_until(
            lambda: ingress.metric(REQUESTS, route=BY_PATH, status="client_closed") == 1,
            "the request counted as client_closed",
        )
        assert ingress.metric(in_flight) == 0
        assert ingress.metric(REQUESTS, route=BY_PATH, status="500") is None
    # aiohttp's access log has its line, as for every request; nothing else is above debug.
    lines = [line for line in _ours(_lines(service_log)) if line["logger"] != "aiohttp.access"]
    assert any(line["level"] == "debug" for line in lines), lines  # logged, quietly
    assert [line for line in lines if line["level"] != "debug" or "exc" in line] == []


async def test_a_clients_malformed_http_is_one_warning_line_without_its_token(
    kafka_bootstrap: str, service_log: io.StringIO
) -> None:
    token = TOKEN.encode()
    malformed = [
        _request(b"/webhooks/omicall/" + token + b"?" + b"a" * 9000),  # a URL over 8 KiB
        _request(b"/webhooks/omicall/" + token + b"\x01"),  # a control character in the path
        _request(b"/webhooks/omicall", b"X-Callstream-Token: " + token + b"\x01\r\n"),
        # a header value over 8 KiB: the parser quotes the value, not the header's name
        _request(b"/webhooks/omicall", b"X-Callstream-Token: " + token + b"a" * 9000 + b"\r\n"),
        # a percent-encoded route letter (aiohttp routes it to the webhook) in a URL over 8 KiB
        _request(b"/webhooks/%6fmicall/" + token + b"?" + b"a" * 9000),
    ]
    well_formed = [  # their request lines and headers reach aiohttp's access log
        _request(b"/webhooks/omicall/" + token, content_type=b"text/plain"),
        _request(b"/webhooks/omicall", b"X-Callstream-Token: " + token + b"\r\n", b"[]"),
    ]
    async with serving_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        for request in malformed:
            raw = await exchange(ingress.port, request)
            assert parse_response(raw).status == 400, raw
        for request in well_formed:
            raw = await exchange(ingress.port, request)
            assert parse_response(raw).status in {400, 415}, raw
    text = service_log.getvalue()
    assert TOKEN not in text
    lines = _ours(_lines(service_log))
    warnings = [line for line in lines if line["level"] == "warning"]
    assert len(warnings) == len(malformed), warnings
    assert all(line["logger"] == "aiohttp.server" and "exc" not in line for line in warnings)
    assert [line for line in lines if line["level"] in {"error", "critical"}] == []
    seen = sum(1 for line in lines if line["logger"] == "aiohttp.access")
    assert seen == len(malformed) + len(well_formed)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_a_413_closes_the_connection_at_once(kafka_bootstrap: str, chunked: bool) -> None:
    target = b"/webhooks/omicall/" + TOKEN.encode()
    if chunked:  # more than the limit sent, and a body that does not end
        chunk = b"x" * 8192
        request = (
            b"POST " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            * 2
        )
    else:  # announced, never sent
        request = _request(target, body=b"", length=99_999_999).replace(
            b"Connection: close\r\n", b""
        )
    settings = ingress_settings(kafka_bootstrap, max_body_bytes=4096)
    async with serving_ingress(settings) as ingress:
        raw = await exchange(ingress.port, request, close_within_s=1.0)
    answer = parse_response(raw)
    assert (answer.status, orjson.loads(answer.body)["error"]) == (413, "payload_too_large")
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("target", "headers", "status"),
    [
        (b"/webhooks/omicall/wrong-token", b"", 401),
        (b"/webhooks/omicall/" + TOKEN.encode(), b"", 415),
        (b"/openapi.json", b"", 405),
    ],
    ids=["unauthenticated", "wrong-content-type", "no-such-method"],
)
async def test_a_refused_request_with_an_undecodable_body_logs_no_error(
    kafka_bootstrap: str, service_log: io.StringIO, target: bytes, headers: bytes, status: int
) -> None:
    """A body the handler never reads: aiohttp would read it after the answer ("lingering"),
    fail to decode it, and log an unhandled exception with its traceback, for any client.
    Found by tests/reliability/test_ingress_fuzz.py."""
    gzip_header = b"Content-Encoding: gzip\r\n" + headers
    content_type = b"text/plain" if status == 415 else b"application/json"
    request = _request(target, gzip_header, b"not gzip at all", content_type=content_type)
    async with serving_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        answer = parse_response(await exchange(ingress.port, request, close_within_s=2.0))
    assert answer.status == status
    assert answer.headers["connection"] == "close"
    lines = _ours(_lines(service_log))
    assert [line for line in lines if line["level"] in {"error", "critical"} or "exc" in line] == []
