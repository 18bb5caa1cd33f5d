"""The ingress web application: authenticate, parse, publish, answer.

The webhook handler stays thin: each step is a function of its own module (auth, body, the
schemas parser, the topic registry, the publisher); this module only orders them and maps each
refusal to its HTTP status.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from callstream.ingest.auth import (
    TOKEN_HEADER,
    SignatureError,
    client_address,
    source_allowed,
    verify_signature,
)
from callstream.ingest.body import (
    BodyTimeout,
    BodyTooLarge,
    BodyUnreadable,
    ClientGone,
    abandon_unread,
    read_limited,
)
from callstream.ingest.metrics import CLIENT_CLOSED, IngressMetrics
from callstream.ingest.openapi import openapi_document
from callstream.ingest.publisher import Ack, Publisher, PublishUnavailable
from callstream.ingest.settings import IngressSettings
from callstream.kafka.admin import prepare_topics
from callstream.kafka.topiccheck import registry_topics
from callstream.schemas.errors import PAYLOAD_KINDS, PayloadKind, WebhookParseError
from callstream.schemas.headers import KIND, RECEIVED_AT_MS, REQUEST_ID, REQUEST_ID_PATTERN, SOURCE
from callstream.schemas.parse import parse_webhook
from callstream.schemas.rejected import rejected_webhook
from callstream.schemas.topics import (
    CALL_EVENTS,
    CDRS,
    REJECTED,
    topic_for_kind,
    topic_names,
)
from callstream.webapp import (
    Handler,
    Refusal,
    add_healthz,
    error_response,
    http_error_refusal,
)

log = logging.getLogger("callstream.ingest")


@dataclass(frozen=True)
class IngressTopics:
    """The cluster names of the topics the ingress writes, after the deployment's prefix."""

    by_kind: dict[PayloadKind, str]
    rejected: str

    @classmethod
    def with_prefix(cls, prefix: str) -> IngressTopics:
        names = topic_names(prefix)
        by_kind = {kind: names[topic_for_kind(kind)] for kind in PAYLOAD_KINDS}
        return cls(by_kind, names[REJECTED])


SETTINGS = web.AppKey("settings", IngressSettings)
PUBLISHER = web.AppKey("publisher", Publisher)
METRICS = web.AppKey("metrics", IngressMetrics)
TOPICS = web.AppKey("topics", IngressTopics)

INGRESS_TOPICS = (CALL_EVENTS, CDRS, REJECTED)
RETRY_AFTER_S = "5"
READY_GAUGE_REFRESH_S = 1.0  # callstream_ingress_ready is at most this old
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


def _route_name(request: web.Request) -> str:
    """The route's template (``/webhooks/omicall/{token}``): never the token itself."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


# Our request ids: a random prefix per process and a counter, unique without a system call
# per request (secrets.token_hex asks the kernel each time, a measurable cost at load).
_ID_PREFIX = secrets.token_hex(8)
_id_counter = itertools.count(1)


def _request_id(request: web.Request) -> str:
    sent = request.headers.get("X-Request-Id")
    if sent is not None and _REQUEST_ID.match(sent):
        return sent
    return f"{_ID_PREFIX}-{next(_id_counter):x}"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Metrics for every request; JSON bodies for every error; never a traceback to clients."""
    metrics = request.app[METRICS]
    route = _route_name(request)
    started = time.perf_counter()
    metrics.in_flight.inc()
    status: int | str | None = None  # the metric's label, when it is not the response's status
    try:
        response = await handler(request)
    except Refusal as refusal:
        response = error_response(refusal)
    except ClientGone as gone:
        # The client's doing, and there is nobody to answer: counted apart, not logged as ours.
        log.debug(str(gone), extra={"route": route})
        status = CLIENT_CLOSED
        response = error_response(Refusal(400, CLIENT_CLOSED, str(gone), close=True))
    except web.HTTPException as http_error:
        response = error_response(http_error_refusal(http_error))
    except Exception:
        log.exception("unexpected error", extra={"route": route})
        response = error_response(Refusal(500, "internal", "unexpected server error"))
    finally:
        metrics.in_flight.dec()
    if abandon_unread(request):  # refused before its body was read: nothing more to read
        response.force_close()
    elapsed = time.perf_counter() - started
    status = response.status if status is None else status
    metrics.observe_request(route, status, elapsed)
    if request.app[SETTINGS].log_requests:
        log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
            },
        )
    return response


def _check_content_type(request: web.Request) -> None:
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise Refusal(415, "unsupported_media_type", "Content-Type must be application/json")
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in {"utf-8", "utf8"}:
        raise Refusal(415, "unsupported_media_type", "the body must be UTF-8")


def _source(request: web.Request, settings: IngressSettings) -> str:
    """The caller's address; checked against the allow-list when there is one."""
    if not settings.allowed_networks and not settings.trusted_proxies:
        return request.remote or ""  # nothing to check: skip parsing addresses
    # Every line of the header, in order: a proxy may add a line rather than extend the first
    # (HAProxy), and the first line is then the client's own.
    forwarded_for = ",".join(request.headers.getall("X-Forwarded-For", ())) or None
    address = client_address(request.remote, forwarded_for, settings.trusted_proxies)
    if not source_allowed(address, settings.allowed_networks):
        raise Refusal(403, "forbidden_source", "this source address may not post webhooks")
    return str(address) if address is not None else ""


def _authenticate(request: web.Request, settings: IngressSettings) -> str:
    """The caller's address, once its source and its token have been checked."""
    source = _source(request, settings)
    token = request.match_info.get("token") or request.headers.get(TOKEN_HEADER)
    if not settings.tokens.matches(token):
        raise Refusal(401, "unauthorized", "missing or wrong webhook token")
    return source


async def _read_verified_body(request: web.Request, settings: IngressSettings) -> bytes:
    """The body under the size limit, its signature checked when a signing secret is set."""
    try:
        body = await read_limited(request, settings.max_body_bytes, settings.body_timeout_s)
    except BodyTimeout as late:
        raise Refusal(408, "body_timeout", str(late), close=True) from None
    except BodyTooLarge as too_large:
        raise Refusal(413, "payload_too_large", str(too_large), close=True) from None
    except BodyUnreadable as unreadable:
        raise Refusal(400, "unreadable_body", str(unreadable), close=True) from None
    request.app[METRICS].received_bytes.inc(len(body))
    if settings.signing_key is not None:
        try:
            verify_signature(
                settings.signing_key,
                request.headers.get("webhook-id"),
                request.headers.get("webhook-timestamp"),
                request.headers.get("webhook-signature"),
                body,
                now=time.time(),
            )
        except SignatureError as bad_signature:
            raise Refusal(401, "bad_signature", str(bad_signature)) from None
    return body


async def _publish(
    request: web.Request,
    topic: str,
    key: str | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
) -> Ack:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    key_bytes = key.encode() if key is not None else None
    try:
        ack = await request.app[PUBLISHER].publish(topic, key_bytes, value, headers)
    except PublishUnavailable as unavailable:
        log.error("publish failed", extra={"topic": topic, "error": str(unavailable)})
        raise Refusal(
            503, "kafka_unavailable", str(unavailable), {"Retry-After": RETRY_AFTER_S}
        ) from None
    metrics.kafka_ack_seconds.observe(time.perf_counter() - started)
    metrics.observe_published(topic)
    return ack


async def receive_webhook(request: web.Request) -> web.Response:
    """``POST /webhooks/omicall[/{token}]``: 200 only after Kafka acknowledged the body."""
    settings = request.app[SETTINGS]
    topics = request.app[TOPICS]
    source = _authenticate(request, settings)
    _check_content_type(request)
    body = await _read_verified_body(request, settings)
    received_at_ms = time.time_ns() // 1_000_000
    request_id = _request_id(request)
    headers = [
        (RECEIVED_AT_MS, str(received_at_ms).encode()),
        (REQUEST_ID, request_id.encode()),
        (SOURCE, source.encode()),
    ]
    try:
        webhook = parse_webhook(body)
    except WebhookParseError as refused:
        if refused.category == "malformed":
            raise Refusal(400, refused.code, str(refused)) from None
        # A JSON object we cannot accept: keep it, with the reason, before saying no.
        record = msgspec.json.encode(rejected_webhook(refused, body, received_at_ms))
        await _publish(request, topics.rejected, refused.call_id, record, headers)
        raise Refusal(422, refused.code, str(refused)) from None
    topic = topics.by_kind[webhook.kind]
    headers.append((KIND, webhook.kind.encode()))
    ack = await _publish(request, topic, webhook.call_id, body, headers)
    return _json(
        {
            "accepted": True,
            "kind": webhook.kind,
            "call_id": webhook.call_id,
            "topic": ack.topic,
            "partition": ack.partition,
            "offset": ack.offset,
        }
    )


async def readyz(request: web.Request) -> web.Response:
    """503 until the producer is connected with its topics prepared, and while the broker has
    not answered recently; the detail says which."""
    settings = request.app[SETTINGS]
    if request.app[PUBLISHER].ready(settings.ready_window_s):
        return _json({"status": "ready"})
    reason = request.app[PUBLISHER].unready_reason
    raise Refusal(503, "not_ready", reason, {"Retry-After": RETRY_AFTER_S})


async def metrics(request: web.Request) -> web.Response:
    ready = request.app[PUBLISHER].ready(request.app[SETTINGS].ready_window_s)
    request.app[METRICS].ready.set(ready)
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(_request: web.Request) -> web.Response:
    return _json(openapi_document())


def create_app(settings: IngressSettings, publisher: Publisher | None = None) -> web.Application:
    """The ingress app; it starts and stops its publisher with itself (``cleanup_ctx``)."""
    app = web.Application(middlewares=[observe], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = IngressMetrics.create()
    app[TOPICS] = IngressTopics.with_prefix(settings.topic_prefix)
    app[PUBLISHER] = publisher or Publisher(
        settings.bootstrap_servers,
        send_timeout_s=settings.send_timeout_s,
        linger_ms=settings.linger_ms,
        prepare=lambda: prepare_topics(
            settings.bootstrap_servers,
            registry_topics(INGRESS_TOPICS, settings.topic_prefix),
            settings.replication_factor,
        ),
    )

    async def publisher_lifecycle(app: web.Application) -> AsyncIterator[None]:
        await app[PUBLISHER].start()
        yield
        await app[PUBLISHER].stop()

    async def ready_gauge(app: web.Application) -> AsyncIterator[None]:
        """Keep ``callstream_ingress_ready`` current between scrapes: with several processes,
        a scrape reads the others' last values (ingest/metrics.py)."""

        async def refresh() -> None:
            while True:
                app[METRICS].ready.set(app[PUBLISHER].ready(settings.ready_window_s))
                await asyncio.sleep(READY_GAUGE_REFRESH_S)

        task = asyncio.create_task(refresh())
        yield
        task.cancel()

    app.cleanup_ctx.append(publisher_lifecycle)
    app.cleanup_ctx.append(ready_gauge)
    app.router.add_post("/webhooks/omicall/{token}", receive_webhook)
    app.router.add_post("/webhooks/omicall", receive_webhook)
    add_healthz(app, "ingress")
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    return app
