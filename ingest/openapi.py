"""OpenAPI 3.1 of the ingress routes, with the webhook bodies' schemas from the models."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from callstream import __version__
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
_ACCEPTED = {
    "type": "object",
    "required": ["accepted", "kind", "call_id", "topic", "partition", "offset"],
    "properties": {
        "accepted": {"const": True},
        "kind": {"enum": ["event", "cdr"]},
        "call_id": {"type": "string"},
        "topic": {"type": "string"},
        "partition": {"type": "integer"},
        "offset": {"type": "integer"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _webhook_operation(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/LiveCallEvent"},
                            {"$ref": "#/components/schemas/CallDetailRecord"},
                        ]
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "Kafka acknowledged the body (acks=all)",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                },
            },
            "400": _error(
                "not UTF-8, not JSON, not an object, hostile JSON, or a body that does not match"
                " its Content-Encoding (gzip and deflate are read)"
            ),
            "401": _error("missing or wrong token or signature; nothing published"),
            "403": _error("source address not in CALLSTREAM_ALLOWED_CIDRS"),
            "408": _error(
                "headers or body too slow (CALLSTREAM_HEADER_TIMEOUT, CALLSTREAM_BODY_TIMEOUT);"
                " the connection is closed"
            ),
            "413": _error("body over the limit (default 64 KiB; once decompressed)"),
            "415": _error("Content-Type is not JSON"),
            "422": _error(
                "a JSON object that is neither a live event nor a CDR; kept on omicall.rejected"
            ),
            "503": _error(
                "Kafka did not acknowledge in time, or the process has CALLSTREAM_MAX_CONNECTIONS"
                " open; retry after Retry-After"
            ),
        },
    }


def _probe(description: str) -> dict[str, Any]:
    return {"get": {"summary": description, "responses": {"200": {"description": "ok"}}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document served at ``GET /openapi.json``."""
    _, components = msgspec.json.schema_components(
        [LiveCallEvent, CallDetailRecord], ref_template="#/components/schemas/{name}"
    )
    token_path = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    token_header = {
        "name": "X-Callstream-Token",
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "callstream ingress", "version": __version__},
        "paths": {
            "/webhooks/omicall/{token}": {
                "post": _webhook_operation("An OMICall webhook, token in the path", [token_path])
            },
            "/webhooks/omicall": {
                "post": _webhook_operation("An OMICall webhook, token in a header", [token_header])
            },
            "/healthz": _probe("the process is alive"),
            "/readyz": {
                "get": {
                    "summary": "Kafka producer connected and the broker answered recently",
                    "responses": {"200": {"description": "ready"}, "503": _error("not ready")},
                }
            },
            "/metrics": _probe("Prometheus metrics"),
            "/openapi.json": _probe("this document"),
        },
        "components": {"schemas": {**components, "Error": _ERROR, "Accepted": _ACCEPTED}},
    }
