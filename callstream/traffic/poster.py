"""Post :class:`Delivery` bodies to an ingress as the provider would: on time, a bounded number
in flight, retried with backoff on a 5xx, 408, 429 or a lost connection; shared by `simulate`
and `replay` (docs/traffic.md)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from callstream.ingest.auth import TOKEN_HEADER
from callstream.traffic.delivery import Delivery

BACKOFF_CAP_S = 8.0
RETRY_AFTER_CAP_S = 60.0  # a Retry-After longer than this is a server's mistake, not a plan
RETRYABLE_4XX = frozenset({408, 429})
# Deliveries started and not yet finished (waiting out a backoff included), per request slot:
# bounds memory while the ingress refuses, without letting one retried body hold up the rest.
PENDING_PER_SLOT = 16
TICK_S = 1.0  # progress is told the counts at least this often, even while nothing moves

ResultCallback = Callable[[Delivery, int | None, bytes], None]


@dataclass(frozen=True, slots=True)
class PostSettings:
    """Where and how fast to post. ``speed`` divides each ``Delivery.at_s`` (0: as fast as
    the answers allow); the token goes in the ``X-Callstream-Token`` header only."""

    url: str
    token: str = field(repr=False)
    speed: float = 1.0
    concurrency: int = 16
    max_attempts: int = 6
    backoff_s: float = 0.5
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.speed >= 0:  # NaN too
            raise ValueError("speed must be 0 or more")
        if self.concurrency < 1 or self.max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        if not (self.backoff_s >= 0 and self.timeout_s > 0):
            raise ValueError("backoff_s must be 0 or more and timeout_s positive")


@dataclass
class PostSummary:
    """The counts so far. ``sent``: deliveries started; ``acked``: answered 2xx; ``refused``:
    a final 4xx or 3xx; ``failed``: no 2xx after ``max_attempts``; ``retried``: attempts after a
    delivery's first; ``by_status``: every HTTP answer, retried ones included."""

    sent: int = 0
    acked: int = 0
    refused: int = 0
    retried: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    interrupted: bool = False

    @property
    def rate(self) -> float:
        """Acked deliveries per second."""
        return self.acked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def counts(self) -> dict[str, object]:
        """What the traffic commands print on stdout when they end."""
        return {
            "sent": self.sent,
            "acked": self.acked,
            "refused": self.refused,
            "retried": self.retried,
            "failed": self.failed,
            "interrupted": self.interrupted,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    @property
    def done(self) -> int:
        """Deliveries with a final outcome."""
        return self.acked + self.refused + self.failed


class PostProgress(Protocol):
    """Told the counts after every change and at least every second (:data:`TICK_S`)."""

    def update(self, summary: PostSummary) -> None: ...


def should_retry(status: int | None) -> bool:
    """A provider's rule: retry a lost connection or timeout (None), a 5xx, 408 and 429;
    a 2xx is done, and any other answer (a 4xx, a redirect, which is not followed) is a refusal
    that a retry would not change."""
    if status is None or status >= 500:
        return True
    return status in RETRYABLE_4XX


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped at
    :data:`RETRY_AFTER_CAP_S`; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(when.timestamp() - now, 0.0), RETRY_AFTER_CAP_S)


def backoff_delay(
    failures: int, first_s: float, retry_after_s: float | None, rng: random.Random
) -> float:
    """The wait after a delivery's ``failures``-th failed attempt: exponential from
    ``first_s`` (doubling, capped at :data:`BACKOFF_CAP_S`) with equal jitter (between half and
    all of it, so retries of many deliveries spread), and never shorter than ``Retry-After``."""
    ceiling = min(first_s * 2 ** (failures - 1), BACKOFF_CAP_S)
    delay = rng.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after_s) if retry_after_s is not None else delay


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int | None  # None: no HTTP answer (connection lost, timed out); body says why
    body: bytes
    retry_after_s: float | None


def _why(error: BaseException) -> str:
    """Why no answer came, never with the URL (some aiohttp errors quote it, and a token may
    be in its path)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect to {error.host}:{error.port}"
    if isinstance(error, TimeoutError):
        return "timed out"
    return type(error).__name__


class _Poster:
    """One run's state: the session, the slots and the counts."""

    def __init__(
        self,
        settings: PostSettings,
        session: aiohttp.ClientSession,
        on_result: ResultCallback | None,
        progress: PostProgress | None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.on_result = on_result
        self.progress = progress
        self.summary = PostSummary()
        self.slots = asyncio.Semaphore(settings.concurrency)  # requests in flight
        self.pending = asyncio.Semaphore(settings.concurrency * PENDING_PER_SLOT)
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []  # a callback's bug, raised once the rest is done
        self.rng = random.Random()
        self.headers = {"Content-Type": "application/json", TOKEN_HEADER: settings.token}
        self.started = time.monotonic()

    def changed(self) -> None:
        self.summary.elapsed_s = time.monotonic() - self.started
        if self.progress is not None:
            self.progress.update(self.summary)

    async def run(self, deliveries: Iterable[Delivery]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        speed = self.settings.speed
        for delivery in deliveries:
            await self.pending.acquire()
            if speed > 0 and (wait := start + delivery.at_s / speed - loop.time()) > 0:
                await asyncio.sleep(wait)
            await self.slots.acquire()  # released by the delivery's first attempt
            self.summary.sent += 1
            task = asyncio.create_task(self.deliver(delivery))
            self.tasks.add(task)
            task.add_done_callback(self.finished)
        while self.tasks:
            await asyncio.wait(set(self.tasks))
        if self.errors:
            raise self.errors[0]

    def finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.pending.release()
        if not task.cancelled() and (error := task.exception()) is not None:
            self.errors.append(error)

    async def deliver(self, delivery: Delivery) -> None:
        """Post until answered 2xx, refused, or out of attempts; the first attempt's slot is
        already held (so bodies start in their order)."""
        failures = 0
        while True:
            try:
                answer = await self.post_once(delivery)
            finally:
                self.slots.release()
            if answer.status is not None:
                self.summary.by_status[answer.status] += 1
            if not should_retry(answer.status):
                if answer.status is not None and 200 <= answer.status < 300:
                    self.summary.acked += 1
                else:
                    self.summary.refused += 1
                self.conclude(delivery, answer)
                return
            failures += 1
            if failures >= self.settings.max_attempts:
                self.summary.failed += 1
                self.conclude(delivery, answer)
                return
            self.changed()
            await asyncio.sleep(
                backoff_delay(failures, self.settings.backoff_s, answer.retry_after_s, self.rng)
            )
            await self.slots.acquire()
            self.summary.retried += 1

    def conclude(self, delivery: Delivery, answer: _Answer) -> None:
        if self.on_result is not None:
            self.on_result(delivery, answer.status, answer.body)
        self.changed()

    async def post_once(self, delivery: Delivery) -> _Answer:
        try:
            headers = self.headers
            if delivery.request_id:
                headers = {**headers, "X-Request-Id": delivery.request_id}
            async with self.session.post(
                self.settings.url, data=delivery.body, headers=headers, allow_redirects=False
            ) as response:
                body = await response.read()
                retry_after = None
                if response.status in (429, 503):
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), time.time()
                    )
                return _Answer(response.status, body, retry_after)
        except (aiohttp.ClientError, TimeoutError) as error:
            return _Answer(None, _why(error).encode(), None)

    async def tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.changed()

    async def stop(self) -> None:
        """Cancel what is in flight and wait for it (its outcome stays unknown: not counted)."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def post_deliveries(
    deliveries: Iterable[Delivery],
    settings: PostSettings,
    *,
    on_result: ResultCallback | None = None,
    progress: PostProgress | None = None,
) -> PostSummary:
    """Post every delivery (read lazily, in ``at_s`` order, each started no earlier than its
    time) and return the counts. ``on_result`` gets each delivery's final status and answer
    body (None and why: no HTTP answer). Cancelled (Ctrl-C), it stops what is in flight and
    returns the counts so far with ``interrupted`` set instead of raising."""
    timeout = aiohttp.ClientTimeout(total=settings.timeout_s)
    connector = aiohttp.TCPConnector(limit=settings.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        poster = _Poster(settings, session, on_result, progress)
        ticker = asyncio.create_task(poster.tick())
        try:
            await poster.run(deliveries)
        except asyncio.CancelledError:
            # Returned, not raised: the caller prints the counts so far (asyncio.run then
            # returns them too, instead of raising KeyboardInterrupt).
            if (task := asyncio.current_task()) is not None:
                task.uncancel()
            poster.summary.interrupted = True
            await poster.stop()
        except KeyboardInterrupt:
            poster.summary.interrupted = True
            await poster.stop()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            poster.changed()
    return poster.summary
