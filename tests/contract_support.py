"""The committed contract files, read as a consumer reads them: JSON Schemas and AsyncAPI."""

from __future__ import annotations

import functools
import json
from typing import Any

import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from callstream.schemas.export import ASYNCAPI_PATH, REPO_ROOT, SCHEMA_DIR
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import topic


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
