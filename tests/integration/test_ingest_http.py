"""The ingress through HTTP on a real broker: what is accepted, what is refused, what lands."""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import time
from pathlib import Path

import orjson
import pytest

from callstream.ingest.auth import parse_networks, parse_signing_secret, sign
from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED
from tests.integration.ingress_support import (
    TOKEN,
    ingress_settings,
    running_ingress,
    sample,
)
from tests.kafka_support import read_topic

CORPUS = Path(__file__).resolve().parents[1] / "data" / "jsontestsuite" / "test_parsing"
JSON = {"Content-Type": "application/json"}
FORWARDED_FOR = "X-Forwarded-For"


async def test_samples_land_byte_identical_with_key_and_headers(kafka_bootstrap: str) -> None:
    event, cdr = sample("event-ringing.json"), sample("cdr.json")
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        by_path = await ingress.client.post(ingress.url(), data=event, headers=JSON)
        by_header = await ingress.client.post(
            "/webhooks/omicall", data=cdr, headers={**JSON, "X-Callstream-Token": TOKEN}
        )
        assert by_path.status == 200, await by_path.text()
        assert by_header.status == 200, await by_header.text()
        event_answer, cdr_answer = await by_path.json(), await by_header.json()
        events = await read_topic(kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=1)
        cdrs = await read_topic(kafka_bootstrap, ingress.topics[CDRS], expect=1)

    assert event_answer["accepted"] is True
    assert event_answer["kind"] == "event"
    assert event_answer["call_id"] == "fee91d6c-90b0-4826-97d7-9ca74c58a4e7"
    assert event_answer["topic"] == ingress.topics[CALL_EVENTS]
    assert cdr_answer["kind"] == "cdr"
    assert cdr_answer["call_id"] == "ae5f56fc-7baa-4537-b312-1105023bbb49"
    for records, answer, body in ((events, event_answer, event), (cdrs, cdr_answer, cdr)):
        assert len(records) == 1
        record = records[0]
        assert record.value == body
        assert record.key == answer["call_id"].encode()
        assert (record.partition, record.offset) == (answer["partition"], answer["offset"])
        headers = dict(record.headers)
        assert headers["callstream-kind"] == answer["kind"].encode()
        assert abs(int(headers["callstream-received-at-ms"]) - time.time() * 1000) < 60_000
        assert len(headers["callstream-request-id"]) >= 16
        assert headers["callstream-source"] == b"127.0.0.1"
    ids = {dict(records[0].headers)["callstream-request-id"] for records in (events, cdrs)}
    assert len(ids) == 2  # one id per request


def _cdr_without(field: str) -> bytes:
    document = orjson.loads(sample("cdr.json"))
    del document[field]
    return orjson.dumps(document)


# (name, url suffix (None: the right token), headers, body, status, error code, lands on rejected)
BAD_INPUT = [
    ("no token", "/webhooks/omicall", JSON, sample("cdr.json"), 401, "unauthorized", False),
    (
        "wrong token",
        "/webhooks/omicall/wrong-token-123456789",
        JSON,
        sample("cdr.json"),
        401,
        "unauthorized",
        False,
    ),
    (
        "text/plain",
        None,
        {"Content-Type": "text/plain"},
        sample("cdr.json"),
        415,
        "unsupported_media_type",
        False,
    ),
    ("no content type", None, {}, sample("cdr.json"), 415, "unsupported_media_type", False),
    (
        "latin-1 charset",
        None,
        {"Content-Type": "application/json; charset=latin-1"},
        sample("cdr.json"),
        415,
        "unsupported_media_type",
        False,
    ),
    ("too large", None, JSON, b'{"a": "' + b"x" * 70_000 + b'"}', 413, "payload_too_large", False),
    ("not utf-8", None, JSON, b'{"state": "ringing\xff"}', 400, "invalid_unicode", False),
    ("not json", None, JSON, b"{state: ringing}", 400, "invalid_json", False),
    ("empty body", None, JSON, b"", 400, "empty_body", False),
    ("an array", None, JSON, b"[1, 2]", 400, "not_object", False),
    (
        "duplicate keys",
        None,
        JSON,
        b'{"state": "cdr", "state": "ringing"}',
        400,
        "duplicate_key",
        False,
    ),
    ("NaN", None, JSON, b'{"duration": NaN}', 400, "invalid_json", False),
    (
        "unknown state",
        None,
        JSON,
        b'{"call_uuid": "c-1", "state": "parked"}',
        422,
        "unknown_state",
        True,
    ),
    ("cdr without duration", None, JSON, _cdr_without("duration"), 422, "missing_field", True),
]


async def test_bad_input_gets_its_status_and_code_and_only_422_is_kept(
    kafka_bootstrap: str,
) -> None:
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        for name, path, headers, body, status, code, _kept in BAD_INPUT:
            response = await ingress.client.post(path or ingress.url(), data=body, headers=headers)
            assert response.status == status, f"{name}: {await response.text()}"
            assert response.content_type == "application/json", name
            answer = await response.json()
            assert answer["error"] == code, name
            assert answer["detail"], name
        rejected = await read_topic(
            kafka_bootstrap, ingress.topics[REJECTED], expect=2, settle_s=1.0
        )
        accepted = await read_topic(kafka_bootstrap, ingress.topics[CDRS], expect=0, settle_s=0.5)
        events = await read_topic(
            kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=0, settle_s=0.5
        )
    assert accepted == []
    assert events == []
    kept = {case[5]: case for case in BAD_INPUT if case[6]}
    by_code = {orjson.loads(record.value)["code"]: record for record in rejected}
    assert len(rejected) == len(kept)
    assert set(by_code) == set(kept)
    for code, (name, _, _, body, _, _, _) in kept.items():
        assert orjson.loads(by_code[code].value)["body"].encode() == body, name
    # Keyed by the call id whenever the parser found one.
    assert by_code["unknown_state"].key == b"c-1"
    assert by_code["missing_field"].key == b"ae5f56fc-7baa-4537-b312-1105023bbb49"


async def test_content_length_that_lies_or_is_absent_is_still_limited(
    kafka_bootstrap: str,
) -> None:
    settings = ingress_settings(kafka_bootstrap, max_body_bytes=4096)

    async def chunks() -> object:
        for _ in range(10):
            yield b" " * 1024

    async with running_ingress(settings) as ingress:
        chunked = await ingress.client.post(ingress.url(), data=chunks(), headers=JSON)
        assert chunked.status == 413
        claimed = await ingress.client.post(
            ingress.url(), data=b"{}", headers={**JSON, "Content-Length": "999999"}
        )
        assert claimed.status in {400, 413}


async def test_signature_required_when_a_signing_secret_is_set(kafka_bootstrap: str) -> None:
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    settings = ingress_settings(kafka_bootstrap, signing_key=parse_signing_secret(secret))
    body = sample("event-ringing.json")
    now = str(int(time.time()))
    good = {
        **JSON,
        "webhook-id": "msg_1",
        "webhook-timestamp": now,
        "webhook-signature": sign(parse_signing_secret(secret), "msg_1", now, body),
    }
    async with running_ingress(settings) as ingress:
        unsigned = await ingress.client.post(ingress.url(), data=body, headers=JSON)
        assert unsigned.status == 401
        assert (await unsigned.json())["error"] == "bad_signature"
        tampered = await ingress.client.post(ingress.url(), data=body + b" ", headers=good)
        assert tampered.status == 401
        signed = await ingress.client.post(ingress.url(), data=body, headers=good)
        assert signed.status == 200, await signed.text()
        events = await read_topic(
            kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=1, settle_s=0.5
        )
    assert [record.value for record in events] == [body]


async def test_source_allow_list_honours_forwarded_for_only_from_trusted_proxies(
    kafka_bootstrap: str,
) -> None:
    settings = ingress_settings(
        kafka_bootstrap,
        allowed_networks=parse_networks("203.0.113.0/24", "CALLSTREAM_ALLOWED_CIDRS"),
        trusted_proxies=parse_networks("127.0.0.1/32", "CALLSTREAM_TRUSTED_PROXIES"),
    )
    body = sample("event-ringing.json")
    async with running_ingress(settings) as ingress:
        direct = await ingress.client.post(ingress.url(), data=body, headers=JSON)
        assert direct.status == 403
        assert (await direct.json())["error"] == "forbidden_source"
        proxied = await ingress.client.post(
            ingress.url(), data=body, headers={**JSON, "X-Forwarded-For": "203.0.113.9"}
        )
        assert proxied.status == 200
        # A proxy that adds a line of its own (HAProxy's "option forwardfor") leaves the
        # client's line first: the client is the last entry of all the lines, not of the first.
        spoofed = await ingress.client.post(
            ingress.url(),
            data=body,
            headers=[
                *JSON.items(),
                (FORWARDED_FOR, "203.0.113.9"),
                (FORWARDED_FOR, "198.51.100.7"),
            ],
        )
        assert spoofed.status == 403
        events = await read_topic(kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=1)
    assert dict(events[0].headers)["callstream-source"] == b"203.0.113.9"


async def test_a_thousand_concurrent_posts_give_a_thousand_records(kafka_bootstrap: str) -> None:
    template = orjson.loads(sample("event-ringing.json"))
    bodies = [orjson.dumps({**template, "call_uuid": f"call-{i:04d}"}) for i in range(1000)]
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        responses = await asyncio.gather(
            *(ingress.client.post(ingress.url(), data=body, headers=JSON) for body in bodies)
        )
        assert [r.status for r in responses] == [200] * 1000
        offsets = {((await r.json())["partition"], (await r.json())["offset"]) for r in responses}
        records = await read_topic(
            kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=1000, settle_s=1.0
        )
    assert len(offsets) == 1000
    assert len(records) == 1000
    assert sorted(record.value for record in records) == sorted(bodies)


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/openapi.json", "/readyz"])
async def test_operational_routes(kafka_bootstrap: str, path: str) -> None:
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        await ingress.client.post(ingress.url(), data=sample("cdr.json"), headers=JSON)
        await ingress.client.post(ingress.url("nope-nope-nope-nope"), data=b"{}", headers=JSON)
        response = await ingress.client.get(path)
        assert response.status == 200
        text = await response.text()
    if path == "/metrics":
        assert (
            'callstream_ingress_requests_total{route="/webhooks/omicall/{token}",status="200"} 1.0'
            in text
        )
        assert 'status="401"} 1.0' in text
        assert "nope-nope" not in text
        assert "callstream_ingress_kafka_ack_seconds_count 1.0" in text
    if path == "/openapi.json":
        document = orjson.loads(text)
        assert document["openapi"].startswith("3.1")
        assert {"/webhooks/omicall/{token}", "/webhooks/omicall", "/readyz"} <= set(
            document["paths"]
        )
        assert "CallDetailRecord" in document["components"]["schemas"]


async def test_hostile_json_corpus_never_gets_a_5xx(kafka_bootstrap: str) -> None:
    files = sorted(CORPUS.iterdir())
    assert len(files) >= 300
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        for path in files:
            response = await ingress.client.post(
                ingress.url(), data=path.read_bytes(), headers=JSON
            )
            assert response.status in {200, 400, 413, 415, 422}, path.name
            assert (await response.json()).get("error") or response.status == 200, path.name
            assert response.status != 200, f"{path.name} is no live event or CDR"
        leaked = await read_topic(kafka_bootstrap, ingress.topics[CDRS], expect=0, settle_s=0.5)
        leaked += await read_topic(
            kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=0, settle_s=0.5
        )
    assert leaked == []


async def test_unknown_routes_and_methods_get_json_errors_not_500s(kafka_bootstrap: str) -> None:
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        unknown = await ingress.client.get("/no/such/route")
        unknown_body = await unknown.json()
        wrong_method = await ingress.client.get(ingress.url())
        wrong_method_body = await wrong_method.json()
    assert unknown.status == 404
    assert unknown.content_type == "application/json"
    assert unknown_body["error"] == "not_found"
    assert wrong_method.status == 405
    assert wrong_method.content_type == "application/json"
    assert wrong_method_body["error"] == "method_not_allowed"
    assert "POST" in wrong_method.headers["Allow"]


async def test_a_gzip_body_is_read_decompressed_and_held_to_the_limit(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = sample("event-ringing.json")
    gzipped = {**JSON, "Content-Encoding": "gzip"}
    bomb = gzip.compress(b" " * 50_000_000)  # 50 MB of whitespace in about 50 KB
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        accepted = await ingress.client.post(
            ingress.url(), data=gzip.compress(event), headers=gzipped
        )
        assert accepted.status == 200, await accepted.text()
        not_gzip = await ingress.client.post(ingress.url(), data=event, headers=gzipped)
        not_gzip_body = await not_gzip.json()
        too_large = await ingress.client.post(ingress.url(), data=bomb, headers=gzipped)
        too_large_body = await too_large.json()
        events = await read_topic(kafka_bootstrap, ingress.topics[CALL_EVENTS], expect=1)
    assert [record.value for record in events] == [event]  # as decompressed
    assert (not_gzip.status, not_gzip_body["error"]) == (400, "unreadable_body")
    assert not_gzip.headers["Connection"] == "close"  # the rest of its body is unparsed
    assert (too_large.status, too_large_body["error"]) == (413, "payload_too_large")
    # The server's loggers only: the test's own consumer may log a new topic's leader moving.
    served = ("aiohttp", "callstream")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(served)]
    assert not errors, caplog.text
