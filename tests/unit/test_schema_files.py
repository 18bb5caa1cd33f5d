"""The committed JSON Schemas and AsyncAPI document: up to date, compatible, and right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from callstream.schemas.calls import CallState, CompletedCall, LiveCall
from callstream.schemas.errors import WebhookParseError
from callstream.schemas.export import SCHEMA_DIR, breaking, render
from callstream.schemas.headers import KIND, RECEIVED_AT_MS, REQUEST_ID, SOURCE
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.parse import parse_webhook
from callstream.schemas.rejected import rejected_webhook
from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED, TOPICS, topic, topic_for_kind
from tests.contract_support import (
    REPO_ROOT,
    asyncapi,
    committed,
    headers_validator,
    message,
    pointer,
)
from tests.unit.schema_fixtures import cdr, event


def test_committed_files_match_the_models() -> None:
    files = render()
    stale = [str(path) for path, text in files.items() if (REPO_ROOT / path).read_text() != text]
    assert stale == [], "run: callstream schemas export"
    on_disk = {p.relative_to(REPO_ROOT) for p in (REPO_ROOT / SCHEMA_DIR).glob("*.json")}
    assert on_disk == {path for path in files if path.parent == SCHEMA_DIR}


def test_generated_schemas_do_not_break_the_committed_ones() -> None:
    # A breaking change must go to a new topic (name ending .v2): a file of its own.
    assert breaking(render(), REPO_ROOT) == {}


def test_every_committed_schema_is_valid_2020_12() -> None:
    for spec in TOPICS:
        assert committed(spec.name).schema["x-callstream"]["version"] == spec.version


def _variants(base: dict[str, Any], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [base]
    for change in changes:
        value = dict(base)
        for key, new in change.items():
            if new is ...:
                value.pop(key)
            else:
                value[key] = new
        out.append(value)
    return out


EVENT_VARIANTS = _variants(
    event(),
    [
        {"date_time": "1626693561000"},
        {"call_uuid": 42},
        {"extra_field": {"any": ["thing"]}},
        {"hotline": None},
        {"hotline": ...},
        {"call_uuid": ...},
        {"call_uuid": ""},
        {"state": "cdr_pending"},
        {"direction": "up"},
        {"date_time": -1},
        {"date_time": "soon"},
        {"to_number": 100.5},
    ],
)
CDR_VARIANTS = _variants(
    cdr(),
    [
        {"duration": "12", "bill_sec": "6.0"},
        {"is_auto_call": "true", "is_have_forward_out": 0},
        {"sip_user": 100},
        {"new_field": 1},
        {"state": ...},
        {"duration": ...},
        {"duration": -3},
        {"call_out_price": "cheap"},
        {"is_auto_call": "yes"},
        {"create_by": "someone"},
        {"direction": "sideways"},
    ],
)


@pytest.mark.parametrize(("name", "bodies"), [(CALL_EVENTS, EVENT_VARIANTS), (CDRS, CDR_VARIANTS)])
def test_provider_schemas_agree_with_the_parser(name: str, bodies: list[dict[str, Any]]) -> None:
    validator = committed(name)
    verdicts = set()
    for body in bodies:
        try:
            webhook = parse_webhook(orjson.dumps(body))
            accepted = topic_for_kind(webhook.kind) == name
        except WebhookParseError:
            accepted = False
        assert validator.is_valid(body) == accepted, body
        verdicts.add(accepted)
    assert verdicts == {True, False}  # the variants exercise both sides


def _processor_values() -> dict[str, msgspec.Struct]:
    error = WebhookParseError(None, "not_object", "the body is a JSON array, not an object")
    return {
        "callstream.call-state": CallState(
            call_id="c", revision=1, status="ringing", updated_at_ms=1
        ),
        "callstream.live-calls": LiveCall(call_id="c", phase="answered", updated_at_ms=1),
        "callstream.calls-completed": CompletedCall(
            call_id="c", revision=2, source="both", outcome="answered", talk_seconds=6.0
        ),
        "callstream.metrics": WindowMetrics(
            dimension="hotline",
            value="842899959300",
            window="1m",
            window_start_ms=0,
            window_end_ms=60_000,
            revision=1,
            updated_at_ms=60_001,
        ),
        "omicall.rejected": rejected_webhook(error, b"[]", 5),
    }


@pytest.mark.parametrize("name", list(_processor_values()))
def test_our_values_validate_and_broken_ones_do_not(name: str) -> None:
    validator = committed(name)
    value = msgspec.to_builtins(_processor_values()[name])
    assert validator.is_valid(value)
    first_required = validator.schema["$defs"][topic(name).value.__name__]["required"][0]
    assert not validator.is_valid({k: v for k, v in value.items() if k != first_required})
    assert not validator.is_valid({**value, first_required: {"not": "this"}})


def test_asyncapi_has_a_channel_message_and_operation_per_topic() -> None:
    document = asyncapi()
    assert document["asyncapi"].startswith("3.")
    assert document["info"]["title"]
    assert document["info"]["version"]
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in TOPICS}
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            message = pointer(document, ref["$ref"])
            assert message["bindings"]["kafka"]["key"]["description"]
            payload = REPO_ROOT / "docs" / Path(message["payload"]["$ref"])
            assert payload.resolve().is_file()
    received = set()
    for operation in document["operations"].values():
        assert operation["action"] == "receive"
        channel = pointer(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert pointer(document, ref["$ref"])
        received.add(channel["address"])
    assert received == addresses


def test_asyncapi_declares_the_headers_the_ingress_writes() -> None:
    document = asyncapi()
    webhook = {RECEIVED_AT_MS, REQUEST_ID, SOURCE, KIND}
    for name in (CALL_EVENTS, CDRS):
        headers = message(document, name)["headers"]
        assert headers["type"] == "object"
        assert set(headers["properties"]) == set(headers["required"]) == webhook
    rejected = message(document, REJECTED)["headers"]
    assert set(rejected["properties"]) == webhook - {KIND}
    assert "required" not in rejected  # the worker's rejected records carry none
    for spec in TOPICS:
        if spec.name not in (CALL_EVENTS, CDRS, REJECTED):
            assert "headers" not in message(document, spec.name)


def test_header_schemas_accept_what_the_ingress_writes_and_nothing_else() -> None:
    validator = headers_validator(CDRS)
    written = {RECEIVED_AT_MS: "1700000000000", REQUEST_ID: "a1b2-3", SOURCE: "::1", KIND: "cdr"}
    assert validator.is_valid(written)
    assert validator.is_valid({**written, SOURCE: ""})
    for wrong in ({RECEIVED_AT_MS: "soon"}, {REQUEST_ID: "a b"}, {KIND: "CDR"}):
        assert not validator.is_valid({**written, **wrong}), wrong
    assert not validator.is_valid({k: v for k, v in written.items() if k != KIND})


def test_a_null_value_is_valid_exactly_where_tombstones_are() -> None:
    # A consumer reads a tombstone as a null value: the schema must accept it where it occurs.
    for spec in TOPICS:
        assert committed(spec.name).is_valid(None) == spec.tombstones, spec.name
    live = committed("callstream.live-calls")
    assert not live.is_valid({})  # still a LiveCall when not a tombstone
