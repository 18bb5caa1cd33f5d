"""JSON Schema (2020-12) of each topic's values, generated from the msgspec models.

For topics that carry the provider's bytes as received, the schema says what the webhook
parser accepts there, so that a body is valid exactly when the ingress takes it (the few
differences JSON Schema cannot express are listed in docs/schemas.md): numeric strings for
numbers within the field's bounds, 0/1 and "true"/"false" for booleans, "null" for an optional
field that holds no text, integers for ids, and integers within 64 bits anywhere. The
ingress's OpenAPI document takes its request bodies from here too (:func:`value_components`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from callstream.schemas.jsonsafe import INT_MAX, INT_MIN
from callstream.schemas.numeric import (
    NULL_PATTERN,
    bool_pattern,
    integer_pattern,
    number_pattern,
)
from callstream.schemas.topics import TopicSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TOMBSTONE = {"type": "null", "description": "a tombstone: the key's record is deleted"}
JSON_VALUE = "JsonValue"
FILE_REFS = "#/$defs/{name}"
Schema = dict[str, Any]


def file_name(spec: TopicSpec) -> str:
    """``<topic>.schema.json``: a ``.v2`` topic gets a file of its own."""
    return f"{spec.name}.schema.json"


def topic_schema(spec: TopicSpec) -> Schema:
    """The schema of ``spec``'s values, with the topic's contract under ``x-callstream``."""
    root, defs = value_components(spec, FILE_REFS)
    return {
        "$schema": DIALECT,
        "title": f"{spec.name} value",
        "description": spec.description,
        "x-callstream": {
            "topic": spec.name,
            "version": spec.version,
            "key": spec.key,
            "as_received": spec.as_received,
            "tombstones": spec.tombstones,
        },
        **root,
        "$defs": defs,
    }


def value_components(spec: TopicSpec, ref_template: str) -> tuple[Schema, dict[str, Schema]]:
    """The schema of ``spec``'s values (a reference, or the choice of it and a tombstone) and
    the named schemas it refers to, with references made by ``ref_template``."""
    (root,), defs = msgspec.json.schema_components([spec.value], ref_template=ref_template)
    if spec.as_received:
        json_value = {"$ref": ref_template.format(name=JSON_VALUE)}
        defs[JSON_VALUE] = _json_value(json_value)
        model = defs[spec.value.__name__]
        ids = set(getattr(spec.value, "id_fields", ()))
        model["properties"] = {
            name: _as_received(node, json_value, is_id=name in ids)
            for name, node in model["properties"].items()
        }
        model["additionalProperties"] = json_value  # unknown fields are kept, any JSON value
    if spec.tombstones:  # a consumer reads a tombstone's value as null
        root = {"anyOf": [root, TOMBSTONE]}
    return root, defs


def _json_value(itself: Schema) -> Schema:
    """Any JSON value the ingress carries: its integers fit 64 bits (int64 or uint64)."""
    return {
        "description": (
            "any JSON value whose integers fit in 64 bits (int64 or uint64); the ingress also "
            "refuses nesting deeper than 32 levels"
        ),
        "anyOf": [
            {"type": ["null", "boolean", "string"]},
            {"type": "number", "not": {"type": "integer"}},
            {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
            {"type": "array", "items": itself},
            {"type": "object", "additionalProperties": itself},
        ],
    }


def _as_received(node: Schema, json_value: Schema, *, is_id: bool) -> Schema:
    """One field's schema widened to the forms the parser accepts for it."""
    branches = node.get("anyOf", [node])
    reads_null = {"type": "null"} in branches and not any(_holds_text(b) for b in branches)
    widened = [_branch(b, json_value, is_id=is_id, reads_null=reads_null) for b in branches]
    leaves = [leaf for branch in widened for leaf in branch.get("anyOf", [branch])]
    if reads_null and not any(leaf.get("type") == "string" for leaf in leaves):
        leaves.append({"type": "string", "pattern": NULL_PATTERN, "description": "read as null"})
    if "anyOf" in node:
        return {**node, "anyOf": leaves}
    return leaves[0] if len(leaves) == 1 else {"anyOf": leaves}


def _holds_text(branch: Schema) -> bool:
    return branch.get("type") == "string" or any(isinstance(v, str) for v in branch.get("enum", ()))


def _branch(node: Schema, json_value: Schema, *, is_id: bool, reads_null: bool) -> Schema:
    """A branch and the strings standing for it (one string branch per field, at most)."""
    kind = node.get("type")
    if kind in ("integer", "number"):
        described = integer_pattern if kind == "integer" else number_pattern
        pattern = described(_bound(node, "minimum"), _bound(node, "maximum"), reads_null)
        return {"anyOf": [node, {"type": "string", "pattern": pattern}]}
    if kind == "boolean":
        text = {"type": "string", "pattern": bool_pattern(reads_null)}
        return {"anyOf": [node, {"enum": [0, 1]}, text]}
    if kind == "string" and is_id:  # an integer id becomes its decimal text
        return {"anyOf": [node, {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX}]}
    if kind in ("object", "array"):
        return _container(node, json_value)
    return node


def _container(node: Schema, json_value: Schema) -> Schema:
    """An object or array: what it holds without a model is any JSON value the ingress takes."""
    if node["type"] == "array":
        items = node.get("items")
        inner = _branch(items, json_value, is_id=False, reads_null=False) if items else json_value
        return {**node, "items": inner}
    if "properties" in node or "additionalProperties" in node:
        return node
    return {**node, "additionalProperties": json_value}


def _bound(node: Schema, key: str) -> int:
    value = node.get(key)
    if value is None or value != int(value):
        raise ValueError(f"a number a string may stand for needs an integral {key}: {node}")
    return int(value)
