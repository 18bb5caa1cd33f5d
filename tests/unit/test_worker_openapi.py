"""The worker's OpenAPI document: valid OpenAPI 3.1, every worker route of the contract, the
answers' schemas the published ones, the parameters as processors/params.py reads them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from callstream.processors.openapi import openapi_document
from callstream.processors.params import DIMENSIONS, FORMATS, WINDOWS, BadRequest, parse_time
from callstream.schemas.export import SCHEMA_DIR
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import CALL_STATE, METRICS, topic
from tests.contract_support import REPO_ROOT

WORKER_ROUTES = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/calls/live",
    "/calls/{call_id}",
    "/metrics/{dimension}",
    "/metrics/{dimension}/{value}",
    "/openapi.json",
    "/",
    "/wallboard/wallboard.js",
    "/wallboard/wallboard.css",
    "/wallboard/events",
}


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


def test_every_worker_route_is_described() -> None:
    assert set(openapi_document()["paths"]) == WORKER_ROUTES


@pytest.mark.parametrize(("name", "model"), [(CALL_STATE, "CallState"), (METRICS, "WindowMetrics")])
def test_answers_are_the_published_topic_schemas(name: str, model: str) -> None:
    text = (REPO_ROOT / SCHEMA_DIR / file_name(topic(name))).read_text("utf-8")
    published = json.loads(text.replace('"#/$defs/', '"#/components/schemas/'))
    components = openapi_document()["components"]["schemas"]
    for def_name, schema in published["$defs"].items():
        assert components[def_name] == schema, def_name
    assert model in published["$defs"]


def _parameter(route: str, name: str) -> dict[str, Any]:
    operation = openapi_document()["paths"][route]["get"]
    (found,) = [p for p in operation["parameters"] if p["name"] == name]
    return found


def test_the_enumerations_are_the_ones_read() -> None:
    assert _parameter("/metrics/{dimension}", "dimension")["schema"]["enum"] == list(DIMENSIONS)
    valued = _parameter("/metrics/{dimension}/{value}", "dimension")["schema"]["enum"]
    assert valued == [d for d in DIMENSIONS if d != "all"]
    for route in ("/metrics/{dimension}", "/metrics/{dimension}/{value}"):
        assert _parameter(route, "window")["schema"]["enum"] == list(WINDOWS)
        assert _parameter(route, "format")["schema"]["enum"] == list(FORMATS)


def _reads(text: str) -> bool:
    try:
        parse_time("from", text)
    except BadRequest:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    ["0", "1760000000000", "999999999999999", "2025-01-31T08:00:00+07:00", "2025-01-31T01:00:00Z",
     "0001-01-01T00:00:00.5-23:59", "2025-01-31",
     "", "1234567890123456", "-1", "2024-01-01T12:99:00Z", "soon", "2025-01-31T01:00:00"],
)  # fmt: skip
def test_a_time_is_described_as_it_is_read(text: str) -> None:
    # What the schema calls valid the worker reads; a zone-less time is read (as UTC) though
    # the schema's date-time needs a zone; every other time the schema refuses is refused.
    validator = Draft202012Validator(
        _parameter("/metrics/{dimension}", "from")["schema"],
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    if validator.is_valid(text):
        assert _reads(text)
    else:
        assert not _reads(text) or re.fullmatch(r"[0-9-]{10}T[0-9:]{8}", text)
