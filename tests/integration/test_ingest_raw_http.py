"""The ingress against clients that break HTTP: bytes an HTTP client library would not send, a
client that leaves mid-body, a body announced far over the limit. Raw sockets on 127.0.0.1."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from callstream.ingest.auth import parse_signing_secret
from tests.integration.ingress_support import (
    TOKEN,
    exchange,
    ingress_settings,
    serving_ingress,
)

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


def _answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


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
            status, _, body = _answer(raw)
            assert (status, orjson.loads(body)["error"]) == (401, code), raw
        assert ingress.metric(REQUESTS, route="/webhooks/omicall", status="401") == 1
        assert ingress.metric(REQUESTS, route=BY_PATH, status="401") == 3
        assert ingress.metric(REQUESTS, route=BY_PATH, status="500") is None


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
    status, headers, body = _answer(raw)
    assert (status, orjson.loads(body)["error"]) == (413, "payload_too_large")
    assert headers["connection"] == "close"
