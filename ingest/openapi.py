"""OpenAPI 3.1 of the ingress routes.

The webhook bodies' schemas are the published ones of omicall.call-events and omicall.cdrs
(``schemagen.value_components``, the source of schemas/json/ too), so the two descriptions
cannot disagree. Every status a route answers is declared, with its body.
"""

from __future__ import annotations

import functools
from typing import Any

from callstream import __version__
from callstream.ingest.auth import TOKEN_HEADER
from callstream.openapi import ERROR, REFS, STATUS, get, json_response, retry_after
from callstream.schemas.errors import PAYLOAD_KINDS
from callstream.schemas.schemagen import value_components
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic

_ACCEPTED = {
    "type": "object",
    "required": ["accepted", "kind", "call_id", "topic", "partition", "offset"],
    "properties": {
        "accepted": {"const": True},
        "kind": {"enum": list(PAYLOAD_KINDS)},
        "call_id": {"type": "string"},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
    },
}
_BODY_DESCRIPTION = (
    "A live call-state event or a call detail record, as OMICall sends it: the values of "
    "omicall.call-events and omicall.cdrs. The ingress also refuses what JSON Schema cannot "
    "say: a key twice in one object, nesting deeper than 32, a body over the size limit "
    "(413); and it accepts a few numeric strings the schema cannot list (docs/schemas.md)."
)


def _webhook_operation(
    summary: str, parameters: list[dict[str, Any]], body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "description": _BODY_DESCRIPTION,
            "content": {"application/json": {"schema": body}},
        },
        "responses": {
            "200": json_response("Accepted", "Kafka acknowledged the body (acks=all)"),
            "400": json_response(
                "Error",
                "not UTF-8, not JSON, not an object, hostile JSON, or a body that does not match"
                " its Content-Encoding (gzip and deflate are read; the connection then closes)",
            ),
            "401": json_response(
                "Error", "missing or wrong token, or signature; nothing published"
            ),
            "403": json_response("Error", "source address not in CALLSTREAM_ALLOWED_CIDRS"),
            "408": json_response(
                "Error",
                "headers or body too slow (CALLSTREAM_HEADER_TIMEOUT, CALLSTREAM_BODY_TIMEOUT);"
                " the connection is closed",
            ),
            "413": json_response(
                "Error", "body over the limit (default 64 KiB; once decompressed)"
            ),
            "415": json_response("Error", "Content-Type is not JSON, or its charset not UTF-8"),
            "422": json_response(
                "Error",
                "a JSON object that is neither a live event nor a CDR; kept on omicall.rejected",
            ),
            "503": json_response(
                "Error",
                "Kafka did not acknowledge in time, or the process has CALLSTREAM_MAX_CONNECTIONS"
                " open; retry after Retry-After",
                retry_after(),
            ),
        },
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


_OPTIONAL_HEADERS = [
    _header("X-Request-Id", "kept on the records when it is 1-64 of [A-Za-z0-9._-]"),
    _header("webhook-id", "Standard Webhooks: required when a signing secret is set"),
    _header("webhook-timestamp", "Standard Webhooks: required when a signing secret is set"),
    _header("webhook-signature", "Standard Webhooks: required when a signing secret is set"),
]


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document served at ``GET /openapi.json``."""
    components: dict[str, Any] = {"Error": ERROR, "Accepted": _ACCEPTED, "Status": STATUS}
    bodies = []
    for name in (CALL_EVENTS, CDRS):
        root, defs = value_components(topic(name), REFS)
        components.update(defs)
        bodies.append(root)
    body = {"oneOf": bodies}
    token_path = {
        "name": "token",
        "in": "path",
        "required": True,
        "description": "a webhook token (CALLSTREAM_WEBHOOK_TOKENS)",
        "schema": {"type": "string"},
    }
    by_header = _webhook_operation("An OMICall webhook, token in a header", _OPTIONAL_HEADERS, body)
    by_header["security"] = [{"webhookToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "callstream ingress", "version": __version__},
        "paths": {
            "/webhooks/omicall/{token}": {
                "post": _webhook_operation(
                    "An OMICall webhook, token in the path", [token_path, *_OPTIONAL_HEADERS], body
                )
            },
            "/webhooks/omicall": {"post": by_header},
            "/healthz": get("the process is alive", {"200": json_response("Status", "alive")}),
            "/readyz": get(
                "Kafka producer connected and the broker answered recently",
                {
                    "200": json_response("Status", "ready"),
                    "503": json_response("Error", "not ready", retry_after()),
                },
            ),
            "/metrics": get(
                "Prometheus metrics",
                {"200": {"description": "metrics", "content": {"text/plain": {}}}},
            ),
            "/openapi.json": get(
                "this document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            ),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "webhookToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER}
            },
        },
    }
