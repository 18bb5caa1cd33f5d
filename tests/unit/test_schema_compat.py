"""breaking_changes: what breaks a topic's readers and what does not."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from callstream.schemas.compat import breaking_changes

BASE: dict[str, Any] = {
    "$ref": "#/$defs/Call",
    "$defs": {
        "Call": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "state": {"enum": ["ringing", "answered"]},
                "price": {"anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
                "agent": {"$ref": "#/$defs/Agent"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "count": {"type": "integer"},
            },
            "required": ["id"],
        },
        "Agent": {"type": "object", "properties": {"name": {"type": "string"}}},
    },
}


def change(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    edit(new)
    return new


def props(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema["$defs"]["Call"]["properties"]
    return result


BREAKING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("field removed", lambda s: props(s).pop("price"), "$.price: field removed"),
    (
        "nested field removed",
        lambda s: s["$defs"]["Agent"]["properties"].pop("name"),
        "$.agent.name: field removed",
    ),
    (
        "number narrowed to integer",
        lambda s: props(s)["price"]["anyOf"][0].update(type="integer"),
        "$.price: type narrowed, no longer accepts ['number']",
    ),
    (
        "null no longer allowed",
        lambda s: props(s).update(price={"type": "number", "minimum": 0}),
        "$.price: type narrowed, no longer accepts ['null']",
    ),
    (
        "newly required",
        lambda s: s["$defs"]["Call"]["required"].append("state"),
        "$.state: field newly required",
    ),
    (
        "enum value removed",
        lambda s: props(s)["state"].update(enum=["ringing"]),
        '$.state: enum values removed: "answered"',
    ),
    (
        "bound tightened",
        lambda s: props(s)["id"].update(minLength=3),
        "$.id: minLength tightened to 3",
    ),
    (
        "bound added",
        lambda s: props(s)["price"]["anyOf"][0].update(maximum=10),
        "$.price: maximum tightened to 10",
    ),
    (
        "pattern added",
        lambda s: props(s)["id"].update(pattern="^c"),
        "$.id: pattern changed to '^c'",
    ),
    (
        "items narrowed",
        lambda s: props(s)["tags"].update(items={"enum": ["a"]}),
        '$.tags[]: values now restricted to "a"',
    ),
    (
        "extras forbidden",
        lambda s: s["$defs"]["Call"].update(additionalProperties=False),
        "$: extra properties now forbidden",
    ),
]


@pytest.mark.parametrize(("what", "edit", "expected"), BREAKING, ids=[b[0] for b in BREAKING])
def test_breaking_changes_are_named(
    what: str, edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert expected in breaking_changes(BASE, change(edit)), what


def test_a_field_that_took_anything_then_a_type_is_narrowed() -> None:
    old = change(lambda s: props(s).update(free={}))
    new = change(lambda s: props(s).update(free={"type": "string"}))
    assert breaking_changes(old, new) == ["$.free: type narrowed from any to ['string']"]


COMPATIBLE: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("nothing changed", lambda s: None),
    ("optional field added", lambda s: props(s).update(note={"type": "string"})),
    ("null allowed", lambda s: props(s).update(id={"type": ["string", "null"]})),
    ("items widened to anything", lambda s: props(s)["tags"].update(items={})),
    ("integer widened to number", lambda s: props(s)["count"].update(type="number")),
    ("enum value added", lambda s: props(s)["state"].update(enum=["ringing", "answered", "x"])),
    ("bound loosened", lambda s: props(s)["id"].update(minLength=0)),
    ("requirement dropped", lambda s: s["$defs"]["Call"].update(required=[])),
    ("description changed", lambda s: props(s)["id"].update(description="the id")),
]


@pytest.mark.parametrize(("what", "edit"), COMPATIBLE, ids=[c[0] for c in COMPATIBLE])
def test_compatible_changes_pass(what: str, edit: Callable[[dict[str, Any]], None]) -> None:
    assert breaking_changes(BASE, change(edit)) == [], what


def test_recursive_schemas_terminate() -> None:
    node: dict[str, Any] = {
        "$ref": "#/$defs/N",
        "$defs": {"N": {"type": "object", "properties": {}}},
    }
    node["$defs"]["N"]["properties"]["next"] = {"$ref": "#/$defs/N"}
    assert breaking_changes(node, copy.deepcopy(node)) == []
