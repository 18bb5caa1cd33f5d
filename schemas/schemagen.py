"""JSON Schema (2020-12) of each topic's values, generated from the msgspec models.

For topics that carry the provider's bytes as received, the schema is widened to what the
parser accepts there (numeric strings for numbers, 0/1 and "true"/"false" for booleans, numbers
for ids), so a consumer validating those bytes accepts everything the ingress let through. The
widened alternatives do not repeat the bounds; the parser enforces them after conversion.
"""

from __future__ import annotations

from typing import Any

import msgspec

from callstream.schemas.topics import TopicSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
NUMERIC_STRING = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
BOOLEAN_STRING = r"^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|0|1)$"
TOMBSTONE = {"type": "null", "description": "a tombstone: the key's record is deleted"}


def file_name(spec: TopicSpec) -> str:
    """``<topic>.schema.json``: a ``.v2`` topic gets a file of its own."""
    return f"{spec.name}.schema.json"


def topic_schema(spec: TopicSpec) -> dict[str, Any]:
    """The schema of ``spec``'s values, with the topic's contract under ``x-callstream``."""
    schema: dict[str, Any] = msgspec.json.schema(spec.value)
    if spec.as_received:
        model = schema["$defs"][spec.value.__name__]
        ids = set(getattr(spec.value, "id_fields", ()))
        model["properties"] = {
            name: _lenient(node, name in ids) for name, node in model["properties"].items()
        }
    if spec.tombstones:  # a consumer reads a tombstone's value as null
        schema["anyOf"] = [{"$ref": schema.pop("$ref")}, TOMBSTONE]
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
        **schema,
    }


def _lenient(node: dict[str, Any], is_id: bool) -> dict[str, Any]:
    if "anyOf" in node:
        branches = [_lenient(branch, is_id) for branch in node["anyOf"]]
        flat = [b for branch in branches for b in branch.get("anyOf", [branch])]
        return {**node, "anyOf": flat}
    kind = node.get("type")
    if kind in ("integer", "number"):
        return {"anyOf": [node, {"type": "string", "pattern": NUMERIC_STRING}]}
    if kind == "boolean":
        return {"anyOf": [node, {"enum": [0, 1]}, {"type": "string", "pattern": BOOLEAN_STRING}]}
    if kind == "string" and is_id:
        return {"anyOf": [node, {"type": "integer"}]}
    return node
