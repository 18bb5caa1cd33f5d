"""The committed contract files, read as a consumer reads them: JSON Schemas and AsyncAPI."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from callstream.schemas.export import ASYNCAPI_PATH, SCHEMA_DIR
from callstream.schemas.jsonsafe import INT_MAX, INT_MIN, MAX_DEPTH
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import leaf_types
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import topic

REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def committed(name: str) -> Draft202012Validator:
    """A validator of the committed JSON Schema of topic ``name``'s values (read once)."""
    path = REPO_ROOT / SCHEMA_DIR / file_name(topic(name))
    schema = json.loads(path.read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def asyncapi() -> dict[str, Any]:
    """The committed AsyncAPI document."""
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / ASYNCAPI_PATH).read_text("utf-8"))
    return document


def pointer(document: dict[str, Any], ref: str) -> Any:
    """The node a local ``$ref`` (``#/a/b``) points at."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def message(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The one message of the channel whose address is topic ``name``."""
    (channel,) = (c for c in document["channels"].values() if c["address"] == name)
    (ref,) = channel["messages"].values()
    found: dict[str, Any] = pointer(document, ref["$ref"])
    return found


def headers_validator(name: str) -> Draft7Validator:
    """A validator of topic ``name``'s headers as the AsyncAPI document declares them (AsyncAPI
    schemas are a superset of draft-07), over the headers decoded as text."""
    schema = message(asyncapi(), name)["headers"]
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


# What JSON Schema cannot say about the parser (docs/schemas.md, "What the schemas cannot say").
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _fields_holding(*kinds: type) -> frozenset[str]:
    return frozenset(
        field.name
        for model in (LiveCallEvent, CallDetailRecord)
        for field in msgspec.inspect.type_info(model).fields  # type: ignore[attr-defined]
        if any(isinstance(leaf, kinds) for leaf in leaf_types(field.type))
    )


NUMBER_FIELDS = _fields_holding(msgspec.inspect.IntType, msgspec.inspect.FloatType)
BOOLEAN_FIELDS = _fields_holding(msgspec.inspect.BoolType)
ID_FIELDS = frozenset(LiveCallEvent.id_fields) | frozenset(CallDetailRecord.id_fields)


def rounded_number(value: object) -> bool:
    """A numeric string a pattern cannot judge: a non-zero number with an exponent, or more
    significant digits than a double holds (the parser rounds them)."""
    if not isinstance(value, str) or not JSON_NUMBER.fullmatch(value):
        return False
    mantissa, _, exponent = value.lower().partition("e")
    digits = mantissa.lstrip("-").replace(".", "").strip("0")
    return bool(digits) and (bool(exponent.strip("+-0")) or len(digits) > 15)


def _integral_float(value: object) -> bool:
    return isinstance(value, float) and value.is_integer()


def _nested(value: object) -> tuple[int, bool]:
    """(depth, holds an integral float beyond 64 bits) of a JSON value; a scalar is depth 0."""
    if isinstance(value, dict | list):
        children = [
            _nested(child) for child in (value.values() if isinstance(value, dict) else value)
        ]
        depth = 1 + max((d for d, _ in children), default=0)
        return depth, any(big for _, big in children)
    return 0, _integral_float(value) and not INT_MIN <= value <= INT_MAX  # type: ignore[operator]


def undescribed(field: str, value: object) -> bool:
    """Whether the schemas cannot give the parser's verdict on ``value`` in body field
    ``field``: JSON Schema does not tell 1.0 from 1 (the parser does, for ids, booleans and
    integers beyond 64 bits), nor count nesting, and a pattern cannot round a number."""
    if field in NUMBER_FIELDS and rounded_number(value):
        return True
    if field in ID_FIELDS | BOOLEAN_FIELDS and _integral_float(value):
        return True
    depth, big_float = _nested(value)
    return big_float or depth >= MAX_DEPTH  # the body itself is one level


def undescribed_body(body: object) -> bool:
    """Whether ``body`` holds a value :func:`undescribed` names."""
    return isinstance(body, dict) and any(undescribed(k, v) for k, v in body.items())
