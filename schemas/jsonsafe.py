"""Strict JSON decoding for bodies from the internet: one object, nothing a consumer could trip on.

msgspec already refuses what RFC 8259 forbids (NaN, trailing data, bad escapes, lone surrogates,
invalid UTF-8). On top of that we refuse duplicate keys (parsers disagree on which one wins),
nesting deeper than :data:`MAX_DEPTH` and integers beyond 64 bits (consumers in other languages
cannot hold them). Those three checks cost a few byte counts on the hot path; the precise, slower
checks run only when the counts say they might fire.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import msgspec
import orjson

from callstream.schemas.errors import ErrorCode, WebhookParseError

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what fits in int64 or uint64
_decode = msgspec.json.Decoder().decode


def _fail(field: str | None, code: ErrorCode, reason: str) -> NoReturn:
    raise WebhookParseError(field, code, reason)


def decode_object(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Decode ``body`` into a JSON object, or raise :class:`WebhookParseError` (malformed)."""
    try:
        value = _decode(body)
    except msgspec.ValidationError as exc:  # msgspec's way to say a number overflows a double
        _fail(None, "number_too_large", str(exc))
    except msgspec.DecodeError as exc:
        if not body.strip():
            _fail(None, "empty_body", "the body is empty")
        _fail(None, *_syntax_error(body, str(exc)))
    except UnicodeDecodeError as exc:
        _fail(None, "invalid_unicode", f"the body is not UTF-8: {exc.reason}")
    except RecursionError:
        _fail(None, "too_deep", f"nesting deeper than {max_depth}")
    if type(value) is not dict:
        _fail(None, "not_object", f"the body is a JSON {_json_type(value)}, not an object")

    # The cheap checks, inline because this is the ingress's hot path. One translate pass keeps
    # only the bytes they look at: ':' '{' '[' and '\\'.
    marks = body.translate(None, _DELETE)
    colons = marks.count(b":")
    escapes = b"\\" in marks
    brackets = len(marks) - colons - (marks.count(b"\\") if escapes else 0)
    # Depth can exceed the limit only when there are more brackets than the limit.
    if brackets > max_depth:
        _check_tree(value, max_depth)
    try:
        canonical = orjson.dumps(value)  # refuses integers beyond 64 bits, for free
    except TypeError as exc:
        _check_tree(value, max_depth)  # names the field
        _fail(None, "number_too_large", str(exc))
    # Every key is followed by one ':'; the others sit in strings. Re-encoded without the keys a
    # duplicate dropped, the count falls - unless an escaped ':' (\u003a) hides the difference.
    if canonical.count(b":") != colons or (escapes and b"\\u003" in body):
        _check_duplicates(body)
    return value


# Everything but ':' '{' '[' and '\\', for bytes.translate to delete.
_DELETE = bytes(sorted(set(range(256)) - set(b":{[\\")))


def _check_tree(value: Any, max_depth: int) -> None:
    """Walk the decoded value: refuse nesting deeper than ``max_depth`` and oversized integers."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            _fail(path or None, "too_deep", f"nesting deeper than {max_depth}")
        items = node.items() if type(node) is dict else enumerate(node)
        for key, child in items:
            if type(key) is str:
                child_path = f"{path}.{key}" if path else key
            else:
                child_path = f"{path}[{key}]"
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1, child_path))
            elif type(child) is int and not INT_MIN <= child <= INT_MAX:
                _fail(child_path, "number_too_large", "integer beyond 64 bits")


def _check_duplicates(body: bytes) -> None:
    """Parse again with the standard library, which shows every key, and refuse repeats."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, item in items:
            if key in seen:
                _fail(key, "duplicate_key", f"key {key!r} appears more than once in an object")
            seen[key] = item
        return seen

    json.loads(body.decode(), object_pairs_hook=pairs)


def _syntax_error(body: bytes, message: str) -> tuple[ErrorCode, str]:
    """Code and reason of a body msgspec refused; orjson words Unicode faults more precisely."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
    unicode = "surrogate" in message or "not valid UTF-8" in message
    return ("invalid_unicode" if unicode else "invalid_json"), message


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
