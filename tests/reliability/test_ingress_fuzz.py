"""Fuzzing the ingress (issue #15, check 5): a real `callstream ingest` on the session's
three-node cluster (``kafka_cluster``: topics with three replicas, ``min.insync.replicas`` 2).

Two sources of cases, against one process. Hypothesis builds whole HTTP requests: provider
webhooks with a field mutated, hostile JSON (the JSONTestSuite corpus), random bytes, deep
nesting, huge numbers, bad UTF-8, BOMs, duplicate keys, bodies a few bytes either side of the
size limit, gzip and deflate (a bomb among them), chunked framing; the token right, wrong or
missing, in the path or the header; odd X-Request-Id values; any Content-Type. Then
schemathesis runs every check of /openapi.json again, with more examples than the contract test.

Asserted: never a 5xx (every node stays up, so not even a 503), the process alive throughout,
no traceback in its log, and a clean SIGTERM at the end. Every record on the three topics it
writes is read back: none from an unauthenticated request (hypothesis tags each request with its
own X-Request-Id; schemathesis's ignored_auth check covers its own), as many as the 200s and 422s
the ingress answered, every live event and CDR parsed again by the project's parser and valid
against its committed JSON Schema, every rejected record valid against its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import socket
import sys
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from callstream.schemas.errors import WebhookParseError
from callstream.schemas.headers import REQUEST_ID
from callstream.schemas.parse import parse_webhook
from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED, topic_names
from tests.cluster_support import LocalCluster
from tests.contract_support import REPO_ROOT, committed, undescribed_body
from tests.integration.ingress_support import TOKEN, default_env, ingress_process, sample
from tests.kafka_support import read_topic
from tests.raw_http import RawResponse, parse_response

# 130-220 s on the cluster here (88-119 s on one broker): each stored case waits for three
# replicas. Above pytest's default 300 s, with room for a busier machine.
pytestmark = [pytest.mark.reliability, pytest.mark.timeout(480)]

HYPOTHESIS_CASES = 8000
SCHEMATHESIS_EXAMPLES = 800  # per operation (5): its phases add their own cases
SCHEMATHESIS_CONFIG = REPO_ROOT / "tests" / "integration" / "schemathesis.toml"
SCHEMATHESIS_TIMEOUT_S = 240
LIMIT = 64 * 1024  # the ingress's default body limit (default_env keeps it)
CORPUS = sorted((REPO_ROOT / "tests" / "data" / "jsontestsuite" / "test_parsing").glob("*.json"))
ANSWER_WITHIN_S = 10.0
WEBHOOK_ROUTES = ("/webhooks/omicall/{token}", "/webhooks/omicall")


# --- bodies -----------------------------------------------------------------------------------

EVENT, CDR = json.loads(sample("event-ringing.json")), json.loads(sample("cdr.json"))
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@st.composite
def mutated_webhook(draw: st.DrawFn) -> bytes:
    """A provider webhook with fields changed, dropped or added."""
    base = draw(st.sampled_from([EVENT, CDR]))
    body = dict(base)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(body)))
        action = draw(st.sampled_from(["change", "drop", "add"]))
        if action == "change":
            body[name] = draw(ODD_VALUES)
        elif action == "drop":
            body.pop(name)
        else:
            body[draw(st.text(min_size=1, max_size=12))] = draw(ODD_VALUES)
        if not body:
            break
    body["call_uuid" if base is EVENT else "transaction_id"] = uuid.uuid4().hex
    return json.dumps(body).encode()


def _splice(text: str) -> Callable[[bytes], bytes]:
    """Put ``text`` as the first member of a JSON object body."""
    return lambda body: b"{" + text.encode("utf-8", "surrogatepass") + b"," + body[1:]


HUGE_NUMBERS = ["1" + "0" * 400, "1e999999", "-1e-999999", "-0", "1E400", "0." + "0" * 300 + "1"]


@st.composite
def spliced_webhook(draw: st.DrawFn) -> bytes:
    """A valid webhook with a member spliced in as raw text: a duplicate key, a huge number,
    bad UTF-8, or a BOM in front."""
    body = json.dumps(draw(st.sampled_from([EVENT, CDR]))).encode()
    key = draw(st.sampled_from(sorted(EVENT) + sorted(CDR)))
    trick = draw(st.sampled_from(["duplicate", "number", "utf8", "surrogate", "bom"]))
    if trick == "duplicate":
        return _splice(f'"{key}": {json.dumps(draw(ODD_VALUES))}')(body)
    if trick == "number":
        return _splice(f'"{key}": {draw(st.sampled_from(HUGE_NUMBERS))}')(body)
    if trick == "utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x80"]))
        return b'{"' + key.encode() + b'": "a' + bad + b'",' + body[1:]
    if trick == "surrogate":
        return _splice(f'"{key}": "\\ud800"')(body)
    return b"\xef\xbb\xbf" + body


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def near_limit(draw: st.DrawFn) -> bytes:
    """A valid webhook padded to the body limit, give or take a few bytes."""
    body = json.dumps({**draw(st.sampled_from([EVENT, CDR])), "pad": ""}).encode()
    size = LIMIT + draw(st.integers(-4, 4))
    return body[:-2] + b"x" * (size - len(body)) + body[-2:]


BODIES = st.one_of(
    mutated_webhook(),
    spliced_webhook(),
    st.sampled_from(CORPUS).map(Path.read_bytes),
    st.binary(max_size=2048),
    st.builds(nested, st.integers(1, LIMIT // 2), st.sampled_from(["array", "object"])),
    near_limit(),
    st.just(b""),
)


# --- requests ---------------------------------------------------------------------------------

WRONG_TOKENS = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=40),
    st.sampled_from([TOKEN[:-1], TOKEN + "x", TOKEN.upper(), TOKEN[::-1], "%00", TOKEN + "%20"]),
).filter(lambda token: token != TOKEN)
# Most requests reach the parser (the token right, JSON's Content-Type); the rest probe the
# refusals before it.
CONTENT_TYPES = st.one_of(
    st.just("application/json"),
    st.just("application/json"),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=UTF8",
            "application/json; charset=latin-1",
            "application/vnd.omicall+json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30),
)
# Any header value but CR and LF: those would end the request's headers, and the rest of it
# would be another request.
HEADER_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255, exclude_characters="\r\n"),
    max_size=80,
)


@dataclass(frozen=True)
class Case:
    """One request, and what the oracle needs to know about it."""

    raw: bytes
    authenticated: bool
    request_id: str | None  # the X-Request-Id the ingress will keep, when we know it


@st.composite
def requests(draw: st.DrawFn, number: int) -> Case:
    """A whole HTTP/1.1 request; its own X-Request-Id unless an odd one is drawn."""
    in_path = draw(st.sampled_from(["right", "right", "right", "wrong", "none"]))
    in_header = draw(st.sampled_from(["right", "wrong", "none"]))
    path_token = {"right": TOKEN, "wrong": draw(WRONG_TOKENS), "none": None}[in_path]
    header_token = {"right": TOKEN, "wrong": draw(WRONG_TOKENS), "none": None}[in_header]
    # The ingress takes the path's token when there is one, else the header's.
    authenticated = (path_token if path_token is not None else header_token) == TOKEN
    path = "/webhooks/omicall" + (f"/{path_token}" if path_token is not None else "")
    headers = {"Host": "127.0.0.1", "Connection": "close"}
    if header_token is not None:
        headers["X-Callstream-Token"] = header_token
    content_type = draw(CONTENT_TYPES)
    if content_type:
        headers["Content-Type"] = content_type
    request_id: str | None = f"fz{number}-{'a' if authenticated else 'u'}"
    if authenticated and draw(st.integers(0, 9)) == 0:  # an odd value: the ingress makes its own
        request_id = None
        headers["X-Request-Id"] = draw(HEADER_TEXT)
    else:
        headers["X-Request-Id"] = request_id
    body = draw(BODIES)
    encoding = draw(st.sampled_from(["", "", "", "gzip", "deflate", "gzip-wrong", "br", "x"]))
    if encoding == "gzip":
        body = gzip.compress(body if len(body) < LIMIT // 2 else body + b" " * 10 * LIMIT)
    elif encoding == "deflate":
        body = zlib.compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding.removesuffix("-wrong")
    if draw(st.integers(0, 7)) == 0:
        headers["Transfer-Encoding"] = "chunked"
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        headers["Content-Length"] = str(len(body))
        framed = body
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    raw = f"POST {path} HTTP/1.1\r\n{head}\r\n".encode("latin-1") + framed
    return Case(raw, authenticated, request_id)


def exchange(port: int, raw: bytes) -> RawResponse:
    """Send ``raw`` on a new connection; the answer (the request says Connection: close, so
    the ingress closes once it answered)."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WITHIN_S) as sock:
        # Refused before the whole body was read: the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        began = time.monotonic()
        while chunk := sock.recv(65536):
            received += chunk
            assert time.monotonic() - began < ANSWER_WITHIN_S, "the answer never ended"
    assert received, "the ingress closed the connection without an answer"
    return parse_response(bytes(received))


@dataclass
class Tally:
    """What the hypothesis cases were answered, and the request ids whose records may exist."""

    statuses: Counter[int] = field(default_factory=Counter)
    unauthenticated: set[str] = field(default_factory=set)
    authenticated: set[str] = field(default_factory=set)
    records: Counter[str] = field(default_factory=Counter)  # by topic: a 200 or 422 is one


def fuzz(port: int, tally: Tally) -> None:
    """HYPOTHESIS_CASES requests, each checked as it is answered."""
    numbers = iter(range(10**9))

    @settings(
        max_examples=HYPOTHESIS_CASES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data: st.DataObject) -> None:
        case = data.draw(requests(next(numbers)))
        response = exchange(port, case.raw)
        status = response.status
        tally.statuses[status] += 1
        assert status < 500, f"{status} for {case.raw[:300]!r}"
        if case.authenticated:
            if case.request_id is not None:
                tally.authenticated.add(case.request_id)
        else:
            assert case.request_id is not None
            tally.unauthenticated.add(case.request_id)
            assert status in {400, 401}, f"{status} without the token: {case.raw[:300]!r}"
        if status == 422:
            tally.records[REJECTED] += 1
        elif status == 200:
            tally.records[
                {"event": CALL_EVENTS, "cdr": CDRS}[json.loads(response.body)["kind"]]
            ] += 1

    one()


# --- records ----------------------------------------------------------------------------------


def check_record(topic: str, value: bytes) -> None:
    """What a consumer relies on: a live event or CDR parses again, and fits its schema."""
    document = json.loads(value)  # json, not orjson: huge integers are valid JSON
    if topic == REJECTED:
        assert committed(REJECTED).is_valid(document), value[:300]
        return
    try:
        webhook = parse_webhook(value)
    except WebhookParseError as error:
        message = f"{topic} holds what the parser refuses ({error}): {value[:300]!r}"
        raise AssertionError(message) from None
    assert {"event": CALL_EVENTS, "cdr": CDRS}[webhook.kind] == topic
    assert committed(topic).is_valid(document) or undescribed_body(document), value[:300]


def troubles(log: Path) -> list[str]:
    """The ingress's log lines at error level or with a traceback, and any that is not JSON
    (a crash's own output). aiohttp's warnings for malformed HTTP are expected."""
    found = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            found.append(line)
            continue
        if entry.get("level") in {"error", "critical"} or "exc" in entry:
            found.append(line[:500])
    return found


def request_id_of(record: Any) -> str:
    return dict(record.headers)[REQUEST_ID].decode()


def answered(exposition: str, statuses: set[str]) -> int:
    """How many webhook requests the ingress answered with one of ``statuses`` (its /metrics)."""
    total = 0.0
    for match in re.finditer(
        r'^callstream_ingress_requests_total\{route="([^"]*)",status="([^"]*)"\} (\S+)$',
        exposition,
        re.MULTILINE,
    ):
        route, status, count = match.groups()
        if route in WEBHOOK_ROUTES and status in statuses:
            total += float(count)
    return int(total)


def acked(exposition: str, topic: str) -> int:
    """How many records the ingress had Kafka acknowledge on ``topic`` (its /metrics)."""
    found = re.search(
        rf'^callstream_ingress_published_records_total\{{topic="{re.escape(topic)}"\}} (\S+)$',
        exposition,
        re.MULTILINE,
    )
    return int(float(found.group(1))) if found else 0


async def run_schemathesis(url: str) -> int:
    """schemathesis's every check on /openapi.json, many examples: how many cases it ran."""
    run = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(SCHEMATHESIS_CONFIG)),
        *("run", f"{url}/openapi.json", "--no-color", "-n", str(SCHEMATHESIS_EXAMPLES)),
        cwd=REPO_ROOT,
        env={**default_env(), "CALLSTREAM_TEST_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(run.communicate(), SCHEMATHESIS_TIMEOUT_S)
    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-8000:]
    found = re.search(r"Test cases:\s*(\d+) generated", report)
    assert found, report[-3000:]
    return int(found.group(1))


async def test_fuzzed_requests_get_no_5xx_and_leave_only_valid_authenticated_records(
    kafka_cluster: LocalCluster, tmp_path: Path
) -> None:
    bootstrap = kafka_cluster.bootstrap
    prefix = f"fz{uuid.uuid4().hex[:10]}."
    topics = topic_names(prefix)
    log = tmp_path / "ingress.log"
    tally = Tally()
    began = time.monotonic()
    async with ingress_process(default_env(), bootstrap, prefix, log) as ingress:
        await asyncio.to_thread(fuzz, ingress.port, tally)
        fuzzed_s = time.monotonic() - began
        assert ingress.process.returncode is None, "the ingress died"
        # Every record of the hypothesis cases, and not one more.
        mine = {
            name: await read_topic(
                bootstrap, topics[name], expect=tally.records[name], settle_s=1.0
            )
            for name in (CALL_EVENTS, CDRS, REJECTED)
        }
        assert {name: len(records) for name, records in mine.items()} == {
            name: tally.records[name] for name in mine
        }
        ids = {request_id_of(record) for records in mine.values() for record in records}
        assert not ids & tally.unauthenticated
        assert tally.authenticated & ids  # not vacuous: tagged records are there

        schemathesis_cases = await run_schemathesis(ingress.url)
        assert ingress.process.returncode is None, "the ingress died"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{ingress.url}/metrics") as response,
        ):
            exposition = await response.text()
    assert ingress.process.returncode == 0  # SIGTERM: a clean stop
    assert troubles(log) == []
    assert answered(exposition, {str(code) for code in range(500, 600)}) == 0

    published = {
        name: await read_topic(
            bootstrap, topics[name], expect=acked(exposition, topics[name]), settle_s=1.0
        )
        for name in (CALL_EVENTS, CDRS, REJECTED)
    }
    for name, records in published.items():
        for record in records:
            check_record(name, record.value)
    total = sum(len(records) for records in published.values())
    assert total == answered(exposition, {"200", "422"})
    ids = {request_id_of(record) for records in published.values() for record in records}
    assert not ids & tally.unauthenticated
    cases = HYPOTHESIS_CASES + schemathesis_cases
    assert cases >= 10_000
    statuses = dict(sorted(tally.statuses.items()))
    counts = ", ".join(f"{name} {len(records)}" for name, records in published.items())
    print(
        f"\nfuzz: {cases} cases ({HYPOTHESIS_CASES} hypothesis in {fuzzed_s:.0f} s, "
        f"{schemathesis_cases} schemathesis); hypothesis statuses {statuses}; records: {counts}, "
        f"all valid, none unauthenticated; {time.monotonic() - began:.0f} s in all"
    )
