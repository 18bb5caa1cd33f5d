"""The worker's query routes on a plain aiohttp app, with fake tables: answers, JSON errors for
every bad parameter and unknown route, and requests sent on to the worker owning the key."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator
from yarl import URL

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.live_view import LiveView
from callstream.processors.openapi import openapi_document
from callstream.processors.params import DEFAULT_SPAN_MS, WINDOWS
from callstream.processors.query_views import CSV_FIELDS, Queries, add_query_routes, windows_csv
from callstream.processors.routing import ANSWERED_BY, FORWARDED_BY, PASSED_HEADERS, Forwarder
from callstream.schemas.calls import CallState, LiveCall
from callstream.schemas.metrics import WindowMetrics

NOW = 1_760_000_000_000
PARTITIONS = 6
DOWN = "http://127.0.0.1:9"  # nothing listens on the discard port


def state(call_id: str) -> bytes:
    call = CallState(call_id=call_id, revision=1, status="ringing", updated_at_ms=NOW)
    return msgspec.json.encode(call)


def window(value: str, start_ms: int, dimension: str = "hotline", **figures: Any) -> WindowMetrics:
    return WindowMetrics(
        dimension=dimension,  # type: ignore[arg-type]
        value=value,
        window="1h",
        window_start_ms=start_ms,
        window_end_ms=start_ms + 3_600_000,
        revision=1,
        updated_at_ms=NOW,
        **figures,
    )


@dataclass
class Owners:
    """Partition owners as a test sets them; the worker's own URL is set once it listens."""

    own_url: str = ""
    by_partition: dict[int, str | None] = field(default_factory=dict)

    def owner(self, partition: int) -> str | None:
        return self.by_partition.get(partition, self.own_url)


@dataclass
class Windows:
    """A WindowSource holding given windows; it notes what it was asked."""

    held: list[WindowMetrics] = field(default_factory=list)
    asked: list[tuple[str, str | None, str, int, int]] = field(default_factory=list)
    fail: bool = False

    def routing_key(self, dimension: str) -> bytes:
        return f"metrics:{dimension}".encode()

    def windows(
        self, dimension: str, value: str | None, window: str, start_ms: int, end_ms: int
    ) -> list[WindowMetrics]:
        if self.fail:
            raise RuntimeError("the table is gone")
        self.asked.append((dimension, value, window, start_ms, end_ms))
        return [
            w
            for w in self.held
            if w.dimension == dimension and value in (None, w.value) and w.window == window
            if start_ms <= w.window_start_ms < end_ms
        ]


@dataclass
class Live:
    ready: bool = True
    view: LiveView = field(default_factory=LiveView)


@dataclass
class Worker:
    """One worker's query routes, served; its tables are plain dicts."""

    client: TestClient[web.Request, web.Application]
    owners: Owners
    calls: dict[bytes, bytes]
    windows: Windows
    live: Live
    ready: list[bool]

    @property
    def url(self) -> str:
        return self.owners.own_url

    async def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], Any]:
        """Status, the headers an answer passes on, and body (JSON when it is) of ``GET path``
        (sent as written)."""
        response = await self.client.get(URL(path, encoded=True), headers=headers)
        body = await response.read()
        passed = {
            name: response.headers[name] for name in PASSED_HEADERS if name in response.headers
        }
        if response.content_type == "application/json":
            return response.status, passed, msgspec.json.decode(body)
        return response.status, passed, body.decode()


@asynccontextmanager
async def worker(
    clock: Callable[[], int] = lambda: NOW, window_sizes: tuple[str, ...] = WINDOWS
) -> AsyncIterator[Worker]:
    owners, calls, windows, live, ready = Owners(), {}, Windows(), Live(), [True]
    app = web.Application()
    queries = Queries(
        states=lambda partition, key: calls.get(key),
        windows=windows,
        live=live,
        forwarder=Forwarder(owners, timeout_s=5),
        ready=lambda: ready[0],
        partitions=PARTITIONS,
        clock_ms=clock,
        window_sizes=window_sizes,
    )
    add_query_routes(app, queries)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        owners.own_url = str(client.make_url("/").origin())
        yield Worker(client, owners, calls, windows, live, ready)


@asynccontextmanager
async def two_workers() -> AsyncIterator[tuple[Worker, Worker]]:
    async with AsyncExitStack() as stack:
        yield await stack.enter_async_context(worker()), await stack.enter_async_context(worker())


def partition(key: str | bytes) -> int:
    return murmur2_partition(key.encode() if isinstance(key, str) else key, PARTITIONS)


def component(name: str) -> Draft202012Validator:
    components = openapi_document()["components"]
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": components})


# /calls/{call_id}


async def test_a_call_is_its_stored_state_and_an_unknown_one_a_json_404() -> None:
    async with worker() as one:
        one.calls[b"c-1"] = state("c-1")
        status, headers, body = await one.get("/calls/c-1")
        assert (status, headers["Content-Type"]) == (200, "application/json")
        assert body == msgspec.json.decode(state("c-1"))
        component("CallState").validate(body)
        status, _, body = await one.get("/calls/nobody")
        assert status == 404
        assert body["error"] == "not_found"
        assert "nobody" in body["detail"]


async def test_a_worker_not_ready_answers_503_not_a_wrong_404() -> None:
    async with worker() as one:
        one.ready[0] = False
        status, headers, body = await one.get("/calls/c-1")
        assert (status, body["error"], headers["Retry-After"]) == (503, "not_ready", "1")


@pytest.mark.parametrize("call_id", ["c-2", "a%20b", "%C3%BC%2Fx", "%FF"])
async def test_a_call_another_worker_owns_is_answered_by_it(call_id: str) -> None:
    async with two_workers() as (front, owner):
        key = URL(f"/calls/{call_id}", encoded=True).parts[-1].encode()
        owner.calls[key] = state(key.decode())
        for one in (front, owner):
            one.owners.by_partition[partition(key)] = owner.url
        assert await front.get(f"/calls/{call_id}") == await owner.get(f"/calls/{call_id}")
        status, headers, body = await front.get(f"/calls/{call_id}")
        assert (status, body["call_id"], headers[ANSWERED_BY]) == (200, key.decode(), owner.url)
        del owner.calls[key]  # its 404 passes back as it is
        status, _, body = await front.get(f"/calls/{call_id}")
        assert (status, body["error"]) == (404, "not_found")


async def test_a_request_sent_on_once_is_not_sent_on_again() -> None:
    # Two workers that disagree for a moment (a rebalance): each thinks the other owns it.
    async with two_workers() as (one, other):
        one.owners.by_partition[partition("c-3")] = other.url
        other.owners.by_partition[partition("c-3")] = one.url
        status, headers, body = await one.get("/calls/c-3")
        assert (status, body["error"], headers["Retry-After"]) == (503, "not_ready", "1")
        assert "moving" in body["detail"]
        status, _, _ = await other.get("/calls/c-3", **{FORWARDED_BY: one.url})
        assert status == 503


async def test_no_owner_yet_or_an_owner_that_does_not_answer_is_a_503() -> None:
    async with worker() as one:
        one.owners.by_partition[partition("c-4")] = None
        status, _, body = await one.get("/calls/c-4")
        assert (status, body["error"]) == (503, "not_ready")
        one.owners.by_partition[partition("c-4")] = DOWN
        status, headers, body = await one.get("/calls/c-4")
        assert (status, body["error"], headers["Retry-After"]) == (503, "owner_unavailable", "1")
        assert DOWN in body["detail"]


# /calls/live


def live_record(call: LiveCall) -> tuple[bytes, bytes]:
    return call.call_id.encode(), msgspec.json.encode(call)


async def test_live_calls_count_the_view() -> None:
    async with worker() as one:
        for call_id, hotline in (("a", "1900"), ("b", "1900"), ("c", "1800")):
            call = LiveCall(
                call_id=call_id,
                phase="ringing",
                hotline=hotline,
                ringing_at_ms=NOW - 10_000,
                updated_at_ms=NOW,
            )
            one.live.view.apply(*live_record(call))
        status, _, body = await one.get("/calls/live")
        assert status == 200
        component("LiveCalls").validate(body)
        assert body["totals"] == {"ringing": 3, "in_conversation": 0, "oldest_ringing_age_s": 10.0}
        assert [(g["value"], g["ringing"]) for g in body["hotlines"]] == [("1800", 1), ("1900", 2)]
        status, _, body = await one.get("/calls/live?hotline=1900")
        assert [call["call_id"] for call in body["calls"]] == ["a", "b"]


@pytest.mark.parametrize("query", ["hotline=", "queue=1", "agent=1&agent=2", "hotline=1&hotline=1"])
async def test_a_bad_live_filter_is_a_json_400(query: str) -> None:
    async with worker() as one:
        status, _, body = await one.get(f"/calls/live?{query}")
        assert (status, body["error"]) == (400, "bad_request")
        assert body["detail"]


async def test_live_calls_wait_for_the_view() -> None:
    async with worker() as one:
        one.live.ready = False
        status, headers, body = await one.get("/calls/live")
        assert (status, body["error"], headers["Retry-After"]) == (503, "not_ready", "1")


# /metrics/{dimension}[/{value}]


async def test_windows_in_range_by_value_then_start() -> None:
    async with worker() as one:
        one.windows.held = [
            window("1900", 7_200_000, offered=2),
            window("1800", 3_600_000),
            window("1900", 0, offered=1),
            window("1800", 0),
            window("1900", 10_800_000),  # after the range
        ]
        status, _, body = await one.get("/metrics/hotline?from=0&to=10800000")
        assert status == 200
        listed = [(w["value"], w["window_start_ms"]) for w in body]
        assert listed == [("1800", 0), ("1800", 3_600_000), ("1900", 0), ("1900", 7_200_000)]
        for each in body:
            component("WindowMetrics").validate(each)
        assert one.windows.asked == [("hotline", None, "1h", 0, 10_800_000)]
        status, _, body = await one.get("/metrics/hotline/1900?from=1970-01-01T00:00:00Z&to=3h")
        assert status == 400  # "3h" is no time


async def test_defaults_and_the_all_dimension() -> None:
    async with worker() as one:
        assert (await one.get("/metrics/all"))[0] == 200
        assert (await one.get("/metrics/agent/101?window=1d"))[0] == 200
        assert one.windows.asked == [
            ("all", "all", "1h", NOW - DEFAULT_SPAN_MS, NOW),
            ("agent", "101", "1d", NOW - DEFAULT_SPAN_MS, NOW),
        ]


async def test_csv_has_a_header_row_and_a_row_per_window() -> None:
    async with worker() as one:
        one.windows.held = [window("1900", 0, offered=4, answered=3, answer_rate=0.75)]
        status, headers, text = await one.get("/metrics/hotline/1900?from=0&format=csv")
        assert status == 200
        assert headers["Content-Type"].startswith("text/csv")
        assert headers["Content-Disposition"] == 'attachment; filename="hotline-1h.csv"'
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(CSV_FIELDS)
        row = dict(zip(rows[0], rows[1], strict=True))
        assert (row["value"], row["offered"], row["answer_rate"]) == ("1900", "4", "0.75")
        assert row["abandon_rate"] == ""  # null
        assert len(rows) == 2
        _, _, empty = await one.get("/metrics/hotline/1800?from=0&format=csv")
        assert list(csv.reader(io.StringIO(empty))) == [list(CSV_FIELDS)]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/metrics/queue", "dimension"),
        ("/metrics/all/all", "value"),
        ("/metrics/hotline?window=2h", "window"),
        ("/metrics/hotline?format=xml", "format"),
        ("/metrics/hotline?from=soon", "from"),
        ("/metrics/hotline?to=%FF", "to"),
        ("/metrics/hotline?from=2000&to=1000", "from,to"),
        ("/metrics/hotline?window=1m&from=0&to=2025-01-01", "from,to"),
        ("/metrics/hotline?limit=3", "limit"),
        ("/metrics/hotline?window=1h&window=1d", "window"),
    ],
)
async def test_every_bad_parameter_is_a_json_400_naming_it(path: str, parameter: str) -> None:
    async with worker() as one:
        status, _, body = await one.get(path)
        assert (status, body["error"]) == (400, "bad_request")
        assert body["detail"].startswith(f"{parameter}: ")


async def test_a_dimension_another_worker_owns_is_answered_by_it() -> None:
    async with two_workers() as (front, owner):
        owner.windows.held = [window("1900", 0)]
        key = owner.windows.routing_key("hotline")
        front.owners.by_partition[partition(key)] = owner.url
        path = "/metrics/hotline/1900?from=0&format=csv"
        answered = await front.get(path)
        assert answered == await owner.get(path)  # the Content-Disposition too
        assert answered[1]["Content-Disposition"] == 'attachment; filename="hotline-1h.csv"'
        assert front.windows.asked == []


# Every route


async def test_unknown_routes_and_methods_are_json() -> None:
    async with worker() as one:
        status, _, body = await one.get("/nowhere")
        assert (status, body["error"]) == (404, "not_found")
        response = await one.client.post("/calls/c-1")
        assert response.status == 405
        assert "GET" in response.headers["Allow"]
        assert (await response.json())["error"] == "method_not_allowed"


async def test_a_failure_is_a_json_500_without_its_traceback() -> None:
    async with worker() as one:
        one.windows.fail = True
        status, _, body = await one.get("/metrics/hotline")
        assert (status, body) == (500, {"error": "internal", "detail": "unexpected server error"})


async def test_the_openapi_document_is_served() -> None:
    async with worker() as one:
        status, _, body = await one.get("/openapi.json")
        assert (status, body) == (200, openapi_document())


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted() -> None:
    rows = windows_csv(
        [
            window('=HYPERLINK("http://x")', 0, dimension="agent", label="@SUM(A1)"),
            window("1900", 0, label="-2+3"),
            window("842899959300", 0, label="Trần Văn Tiến"),
        ]
    )
    table = list(csv.reader(io.StringIO(rows)))
    value, label = CSV_FIELDS.index("value"), CSV_FIELDS.index("label")
    assert [(row[value], row[label]) for row in table[1:]] == [
        ('\'=HYPERLINK("http://x")', "'@SUM(A1)"),
        ("1900", "'-2+3"),
        ("842899959300", "Trần Văn Tiến"),
    ]


async def test_a_window_size_the_worker_does_not_count_is_a_400_naming_those_it_does() -> None:
    async with worker(window_sizes=("1m", "1d")) as one:
        status, _, body = await one.get("/metrics/all?window=1h")
        assert (status, body["detail"]) == (
            400,
            "window: '1h' is not one of 1m, 1d",
        )
        assert (await one.get("/metrics/all?window=1d"))[0] == 200


async def test_the_openapi_document_offers_only_the_windows_the_worker_counts() -> None:
    """Its schema-valid requests must be accepted: a window the worker does not count is a 400,
    so the document's enum is the worker's windows, not every window the schema names."""
    async with worker(window_sizes=("1m", "1d")) as one:
        status, _, document = await one.get("/openapi.json")
        assert status == 200
        for path in ("/metrics/{dimension}", "/metrics/{dimension}/{value}"):
            parameters = document["paths"][path]["get"]["parameters"]
            (window,) = [p for p in parameters if p["name"] == "window"]
            assert window["schema"]["enum"] == ["1m", "1d"]
