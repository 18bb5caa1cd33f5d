"""Pieces both services' OpenAPI 3.1 documents share (ingest/openapi.py, processors/openapi.py):
the error and status bodies of the contract, JSON responses, the Retry-After header."""

from __future__ import annotations

from typing import Any

REFS = "#/components/schemas/{name}"
ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "a stable code (docs/schemas.md)"},
        "detail": {"type": "string"},
    },
}
STATUS = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "service": {"type": "string"}},
}


def retry_after(*, required: bool = True) -> dict[str, Any]:
    return {
        "Retry-After": {
            "description": "seconds to wait",
            "schema": {"type": "string"},
            "required": required,
        }
    }


def json_response(
    schema: str, description: str, headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A response whose body is the named component."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REFS.format(name=schema)}}},
    }
    if headers:
        response["headers"] = headers
    return response


def get(summary: str, responses: dict[str, Any], **operation: Any) -> dict[str, Any]:
    """A path item with one GET operation."""
    return {"get": {"summary": summary, **operation, "responses": responses}}
