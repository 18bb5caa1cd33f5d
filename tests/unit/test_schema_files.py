"""The committed JSON Schemas and AsyncAPI document: up to date, compatible, and right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
import yaml
from jsonschema import Draft202012Validator

from callstream.schemas.calls import CallState, CompletedCall, LiveCall
from callstream.schemas.errors import WebhookParseError
from callstream.schemas.export import ASYNCAPI_PATH, SCHEMA_DIR, breaking, render
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.parse import parse_webhook
from callstream.schemas.rejected import rejected_webhook
from callstream.schemas.schemagen import file_name
from callstream.schemas.topics import CALL_EVENTS, CDRS, TOPICS, topic, topic_for_kind
from tests.unit.schema_fixtures import cdr, event

REPO_ROOT = Path(__file__).resolve().parents[2]


def committed(name: str) -> Draft202012Validator:
    path = REPO_ROOT / SCHEMA_DIR / file_name(topic(name))
    schema = json.loads(path.read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


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


def _asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / ASYNCAPI_PATH).read_text("utf-8"))
    return document


def _pointer(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_has_a_channel_message_and_operation_per_topic() -> None:
    document = _asyncapi()
    assert document["asyncapi"].startswith("3.")
    assert document["info"]["title"]
    assert document["info"]["version"]
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {spec.name for spec in TOPICS}
    for channel in document["channels"].values():
        for ref in channel["messages"].values():
            message = _pointer(document, ref["$ref"])
            assert message["bindings"]["kafka"]["key"]["description"]
            payload = REPO_ROOT / "docs" / Path(message["payload"]["$ref"])
            assert payload.resolve().is_file()
    received = set()
    for operation in document["operations"].values():
        assert operation["action"] == "receive"
        channel = _pointer(document, operation["channel"]["$ref"])
        for ref in operation["messages"]:
            assert _pointer(document, ref["$ref"])
        received.add(channel["address"])
    assert received == addresses
