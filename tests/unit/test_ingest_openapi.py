"""The ingress's OpenAPI document: valid OpenAPI 3.1, its request bodies the published schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from callstream.ingest.openapi import openapi_document
from callstream.schemas.export import SCHEMA_DIR
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic
from tests.contract_support import REPO_ROOT
from tests.unit.schema_fixtures import cdr, event

WEBHOOK_ROUTES = ("/webhooks/omicall/{token}", "/webhooks/omicall")


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi_document())


@pytest.mark.parametrize("name", [CALL_EVENTS, CDRS])
def test_request_bodies_are_the_published_topic_schemas(name: str) -> None:
    # One source: the committed file, its references moved to the OpenAPI components.
    text = (REPO_ROOT / SCHEMA_DIR / file_name(topic(name))).read_text("utf-8")
    published = json.loads(text.replace('"#/$defs/', '"#/components/schemas/'))
    components = openapi_document()["components"]["schemas"]
    for def_name, schema in published["$defs"].items():
        assert components[def_name] == schema, def_name
    for route in WEBHOOK_ROUTES:
        body = _body_schema(route)
        assert {"$ref": published["$ref"]} in body["oneOf"]


def _body_schema(route: str) -> dict[str, Any]:
    operation = openapi_document()["paths"][route]["post"]
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    return schema


def _body_validator() -> Draft202012Validator:
    components = openapi_document()["components"]
    return Draft202012Validator({**_body_schema(WEBHOOK_ROUTES[0]), "components": components})


def test_the_body_schema_takes_what_the_ingress_takes() -> None:
    validator = _body_validator()
    assert validator.is_valid(event())
    assert validator.is_valid(cdr())
    assert validator.is_valid({**cdr(), "transaction_id": 0, "state": None})  # ids as numbers
    assert validator.is_valid({**event(), "date_time": "1626693561000"})
    assert not validator.is_valid({**event(), "date_time": "01626693561000"})
    assert not validator.is_valid({**event(), "x": 2**64})
    assert not validator.is_valid({**event(), "state": "cdr"})  # a CDR without its fields
    assert not validator.is_valid([event()])


def test_every_answer_of_the_webhook_routes_is_declared() -> None:
    document = openapi_document()
    for route in WEBHOOK_ROUTES:
        responses = document["paths"][route]["post"]["responses"]
        assert {"200", "400", "401", "403", "413", "415", "422", "503"} <= set(responses)
        assert "Retry-After" in responses["503"]["headers"]
        for status, response in responses.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("Accepted" if status == "200" else "Error")


def test_the_header_route_declares_its_token_as_a_security_scheme() -> None:
    document = openapi_document()
    scheme = document["components"]["securitySchemes"]["webhookToken"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-Callstream-Token"}
    assert document["paths"]["/webhooks/omicall"]["post"]["security"] == [{"webhookToken": []}]
