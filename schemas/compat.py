"""Which changes between two JSON Schemas break the readers of a topic.

A change is breaking when a value valid under the old schema may be invalid under the new one,
or when a field readers use disappears: a property removed, a type narrowed, a property newly
required, enum values removed, a bound tightened, a pattern changed, extra properties
forbidden. Adding optional fields, widening types and loosening bounds are not breaking.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every breaking change from ``old_schema`` to ``new_schema``, one line each (sorted)."""
    found: set[str] = set()
    _Compare(old_schema, new_schema, found).node(old_schema, new_schema, "$")
    return sorted(found)


class _Compare:
    def __init__(self, old_root: Schema, new_root: Schema, found: set[str]) -> None:
        self.old_root, self.new_root, self.found = old_root, new_root, found
        self.seen: set[tuple[int, int]] = set()

    def node(self, old: Schema, new: Schema, path: str) -> None:
        old, new = _resolve(self.old_root, old), _resolve(self.new_root, new)
        if (id(old), id(new)) in self.seen:  # recursive schemas
            return
        self.seen.add((id(old), id(new)))
        self._types(old, new, path)
        self._values(old, new, path)
        new_branches = {_branch_key(b): b for b in _branches(self.new_root, new)}
        for branch in _branches(self.old_root, old):
            if (match := new_branches.get(_branch_key(branch))) is not None:
                self._shape(branch, match, path)

    def _types(self, old: Schema, new: Schema, path: str) -> None:
        old_types, new_types = _types(self.old_root, old), _types(self.new_root, new)
        if new_types is None:
            return
        if old_types is None:
            self.found.add(f"{path}: type narrowed from any to {sorted(new_types)}")
            return
        lost = {t for t in old_types if t not in new_types and not _number_holds(t, new_types)}
        if lost:
            self.found.add(f"{path}: type narrowed, no longer accepts {sorted(lost)}")

    def _values(self, old: Schema, new: Schema, path: str) -> None:
        old_values, new_values = _values(self.old_root, old), _values(self.new_root, new)
        if new_values is None:
            return
        if old_values is None:
            self.found.add(f"{path}: values now restricted to {', '.join(sorted(new_values))}")
        elif removed := old_values - new_values:
            self.found.add(f"{path}: enum values removed: {', '.join(sorted(removed))}")

    def _shape(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.found.add(f"{path}: {key} tightened to {new[key]}")
        for key in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.found.add(f"{path}: {key} tightened to {new[key]}")
        if "pattern" in new and new.get("pattern") != old.get("pattern"):
            self.found.add(f"{path}: pattern changed to {new['pattern']!r}")
        if (
            new.get("additionalProperties") is False
            and old.get("additionalProperties") is not False
        ):
            self.found.add(f"{path}: extra properties now forbidden")
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.found.add(f"{path}.{name}: field removed")
            else:
                self.node(old_prop, new_props[name], f"{path}.{name}")
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            self.found.add(f"{path}.{name}: field newly required")
        if "items" in old and "items" in new:
            self.node(old["items"], new["items"], f"{path}[]")


def _resolve(root: Schema, node: Schema) -> Schema:
    while isinstance(ref := node.get("$ref"), str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _branches(root: Schema, node: Schema) -> list[Schema]:
    node = _resolve(root, node)
    union = node.get("anyOf") or node.get("oneOf")
    if union is None:
        return [node]
    return [b for branch in union for b in _branches(root, branch)]


def _branch_key(branch: Schema) -> str:
    kind = branch.get("type")
    if isinstance(kind, str):
        return kind
    if "properties" in branch:
        return "object"
    return "enum" if "enum" in branch or "const" in branch else "any"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return names[type(value)]


def _types(root: Schema, node: Schema) -> set[str] | None:
    """The JSON types ``node`` accepts; None when it accepts any."""
    accepted: set[str] = set()
    for branch in _branches(root, node):
        kind = branch.get("type")
        if isinstance(kind, str):
            accepted.add(kind)
        elif isinstance(kind, list):
            accepted.update(kind)
        elif "enum" in branch or "const" in branch:
            accepted.update(_json_type(v) for v in branch.get("enum", [branch.get("const")]))
        elif "properties" in branch:
            accepted.add("object")
        else:
            return None
    return accepted


def _number_holds(kind: str, accepted: set[str]) -> bool:
    return kind == "integer" and "number" in accepted


def _values(root: Schema, node: Schema) -> set[str] | None:
    """The values ``node`` accepts when it lists them all (enum, const, null, boolean)."""
    values: set[str] = set()
    fixed = {"null": ["null"], "boolean": ["true", "false"]}
    for branch in _branches(root, node):
        if "enum" in branch or "const" in branch:
            listed = branch.get("enum", [branch.get("const")])
            values.update(json.dumps(v, sort_keys=True) for v in listed)
        elif isinstance(kind := branch.get("type"), str) and kind in fixed:
            values.update(fixed[kind])
        else:
            return None
    return values
