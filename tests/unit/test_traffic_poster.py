"""The poster against a tiny scripted ingress on 127.0.0.1: on time, in order, a bounded number
in flight, retried as a provider retries, refused without a retry, stopped cleanly."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from callstream.kafka.broker import free_port
from callstream.traffic.delivery import Delivery
from callstream.traffic.poster import (
    BACKOFF_CAP_S,
    PostSettings,
    backoff_delay,
    parse_retry_after,
    post_deliveries,
    should_retry,
)
from tests.integration.ingress_support import wait_until
from tests.unit.scripted_ingress import HANG, TOKEN, Answer, always, first, scripted_ingress


def settings(url: str, **overrides: float) -> PostSettings:
    values: dict[str, float] = {"speed": 0, "backoff_s": 0.02, "timeout_s": 5.0, **overrides}
    return PostSettings(
        url=url,
        token=TOKEN,
        speed=values["speed"],
        concurrency=int(values.get("concurrency", 4)),
        max_attempts=int(values.get("max_attempts", 6)),
        backoff_s=values["backoff_s"],
        timeout_s=values["timeout_s"],
    )


def at(*times: float) -> list[Delivery]:
    return [Delivery(t, b'{"n": %d}' % n, f"call-{n}") for n, t in enumerate(times)]


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        *[(None, True), (200, False), (202, False), (400, False), (401, False), (404, False)],
        *[(413, False), (422, False), (408, True), (429, True), (500, True), (503, True)],
        # a redirect is not followed (a provider posts to the URL it was given) nor retried
        *[(301, False), (302, False), (307, False), (308, False)],
    ],
)
def test_which_answers_are_retried(status: int | None, retry: bool) -> None:
    assert should_retry(status) is retry


def test_retry_after_in_seconds_or_as_a_date_capped() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(" 7 ", now) == 7.0
    assert parse_retry_after("100000", now) == 60.0
    later = format_datetime(datetime.fromtimestamp(now, UTC) + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now) == pytest.approx(30.0)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_with_jitter_up_to_its_cap_and_waits_out_retry_after() -> None:
    rng = random.Random(1)
    for failures in range(1, 10):
        ceiling = min(0.5 * 2 ** (failures - 1), BACKOFF_CAP_S)
        delays = [backoff_delay(failures, 0.5, None, rng) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(1, 0.5, 5.0, rng) == 5.0


def test_settings_never_show_the_token() -> None:
    assert TOKEN not in repr(settings("http://127.0.0.1:1/webhooks/omicall"))
    with pytest.raises(ValueError, match="speed"):
        PostSettings(url="http://x", token=TOKEN, speed=-1)


async def test_503s_are_retried_with_growing_backoff_then_acked() -> None:
    results: list[tuple[Delivery, int | None, bytes]] = []
    async with scripted_ingress(first([503, 503, 503])) as ingress:
        summary = await post_deliveries(
            at(0), settings(ingress.url), on_result=lambda *r: results.append(r)
        )
    assert (summary.sent, summary.acked, summary.retried, summary.failed) == (1, 1, 3, 0)
    assert summary.by_status == Counter({503: 3, 200: 1})
    gaps = [b.at - a.at for a, b in zip(ingress.hits, ingress.hits[1:], strict=False)]
    assert [gap >= 0.02 * 2**n / 2 for n, gap in enumerate(gaps)] == [True] * 3
    assert results == [(at(0)[0], 200, b'{"status": 200}')]
    assert not summary.interrupted


async def test_a_400_is_refused_without_a_retry() -> None:
    results: list[int | None] = []
    async with scripted_ingress(always(400)) as ingress:
        summary = await post_deliveries(
            at(0), settings(ingress.url), on_result=lambda _d, status, _b: results.append(status)
        )
    assert len(ingress.hits) == 1
    assert (summary.refused, summary.acked, summary.retried) == (1, 0, 0)
    assert results == [400]


async def test_408_and_429_are_retried_and_retry_after_is_waited_out() -> None:
    script = first([408, (429, {"Retry-After": "1"})])
    async with scripted_ingress(script) as ingress:
        summary = await post_deliveries(at(0), settings(ingress.url))
    assert summary.acked == 1
    assert summary.by_status == Counter({408: 1, 429: 1, 200: 1})
    assert ingress.hits[2].at - ingress.hits[1].at >= 1.0


async def test_a_delivery_is_given_up_after_its_attempts() -> None:
    async with scripted_ingress(always(500)) as ingress:
        summary = await post_deliveries(at(0), settings(ingress.url, max_attempts=3))
    assert len(ingress.hits) == 3
    assert (summary.failed, summary.retried, summary.acked) == (1, 2, 0)


async def test_no_server_is_no_answer_and_fails_after_its_attempts() -> None:
    results: list[int | None] = []
    url = f"http://127.0.0.1:{free_port()}/webhooks/omicall"
    summary = await post_deliveries(
        at(0, 0),
        settings(url, max_attempts=2),
        on_result=lambda _d, status, _b: results.append(status),
    )
    assert (summary.failed, summary.retried, summary.by_status) == (2, 2, Counter())
    assert results == [None, None]


async def test_bodies_go_in_order_with_the_token_in_a_header_not_before_their_time() -> None:
    deliveries = at(0, 0.2, 0.2, 0.5)
    async with scripted_ingress(always(200)) as ingress:
        started = time.monotonic()
        summary = await post_deliveries(deliveries, settings(ingress.url, speed=2))
    assert ingress.bodies() == [d.body for d in deliveries]
    early = [
        (hit.at - started, d.at_s / 2)
        for hit, d in zip(ingress.hits, deliveries, strict=True)
        if hit.at - started < d.at_s / 2 - 0.005
    ]
    assert early == []
    assert all(hit.token == TOKEN and TOKEN not in hit.path for hit in ingress.hits)
    assert {hit.content_type for hit in ingress.hits} == {"application/json"}
    assert (summary.acked, summary.sent) == (4, 4)
    assert summary.rate > 0


async def test_a_delivery_s_request_id_goes_with_each_attempt() -> None:
    deliveries = [Delivery(0, b'{"n": 0}', "call-0", "req-0"), Delivery(0, b'{"n": 1}', "")]
    async with scripted_ingress(first([503], then=200)) as ingress:
        await post_deliveries(deliveries, settings(ingress.url, backoff_s=0.01))
    sent = {(hit.body, hit.request_id) for hit in ingress.hits}
    assert sent == {(b'{"n": 0}', "req-0"), (b'{"n": 1}', None)}
    assert len(ingress.hits) == 4  # each body's 503, then its 200


async def test_no_more_than_concurrency_requests_are_in_flight() -> None:
    async with scripted_ingress(always(200), hold_s=0.1) as ingress:
        summary = await post_deliveries(at(*[0] * 8), settings(ingress.url, concurrency=2))
    assert summary.acked == 8
    assert ingress.most_in_flight == 2


async def test_a_retried_delivery_does_not_hold_up_the_next() -> None:
    def script(body: bytes, attempt: int) -> Answer:
        return 503 if body == b'{"n": 0}' and attempt == 1 else 200

    async with scripted_ingress(script) as ingress:
        summary = await post_deliveries(
            at(0, 0), settings(ingress.url, concurrency=1, backoff_s=0.3)
        )
    assert ingress.bodies() == [b'{"n": 0}', b'{"n": 1}', b'{"n": 0}']
    assert summary.acked == 2


async def test_cancelling_returns_the_counts_so_far_marked_interrupted() -> None:
    taken = 0

    def lazily() -> Iterator[Delivery]:
        nonlocal taken
        for delivery in at(*[0] * 1000):
            taken += 1
            yield delivery

    async with scripted_ingress(always(HANG)) as ingress:
        task = asyncio.create_task(post_deliveries(lazily(), settings(ingress.url, concurrency=3)))
        await wait_until(lambda: len(ingress.hits) == 3, "three requests in flight")
        task.cancel()
        summary = await task
    assert not task.cancelled()
    assert summary.interrupted
    assert (summary.sent, summary.acked, summary.failed) == (3, 0, 0)
    assert taken <= 4  # the iterable is read as it is posted, not ahead


async def test_a_failing_result_callback_is_raised_not_lost() -> None:
    def broken(_delivery: Delivery, _status: int | None, _body: bytes) -> None:
        raise RuntimeError("a bug in the caller")

    async with scripted_ingress(always(200)) as ingress:
        with pytest.raises(RuntimeError, match="a bug in the caller"):
            await post_deliveries(at(0, 0), settings(ingress.url), on_result=broken)


async def test_no_answer_says_why_without_the_url_that_may_hold_a_token() -> None:
    port = free_port()
    reasons: list[bytes] = []
    summary = await post_deliveries(
        at(0),
        settings(f"http://127.0.0.1:{port}/webhooks/omicall/{TOKEN}", max_attempts=1),
        on_result=lambda _d, _status, body: reasons.append(body),
    )
    assert summary.failed == 1
    assert reasons == [f"cannot connect to 127.0.0.1:{port}".encode()]
