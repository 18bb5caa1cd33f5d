"""parse_webhook's fast path (a typed decode proven complete by counting colons) gives the same
answer as the precise path for every body, and the provider's samples take it."""

from __future__ import annotations

import pickle
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callstream.schemas.errors import WebhookParseError
from callstream.schemas.jsonsafe import MAX_DEPTH
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import (
    Webhook,
    _complete,
    parse_webhook,
    parse_webhook_precisely,
)
from tests.unit.schema_fixtures import CDR_PATH, EVENT_PATH, cdr, event
from tests.unit.test_schema_property import cdrs, events, json_values


def outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        webhook: Webhook = parse(body)
    except WebhookParseError as refused:
        return ("refused", (refused.code, refused.field, refused.kind, refused.call_id))
    return ("accepted", (webhook.payload, webhook.raw))


def assert_same_answer(body: bytes) -> None:
    assert outcome(parse_webhook, body) == outcome(parse_webhook_precisely, body)


@pytest.mark.parametrize("path", [CDR_PATH, EVENT_PATH])
def test_the_samples_take_the_fast_path(path: Any) -> None:
    body = path.read_bytes()
    assert parse_webhook(body).decoded is None  # the fast path decodes nothing generic
    assert_same_answer(body)


@pytest.mark.parametrize(("sample", "optional"), [(cdr, "note"), (event, "hotline")])
def test_a_body_without_an_optional_field_takes_the_fast_path(sample: Any, optional: str) -> None:
    value = sample()
    del value[optional]
    body = orjson.dumps(value)
    assert parse_webhook(body).decoded is None
    assert_same_answer(body)


@pytest.mark.parametrize("disposition", ["answered", None])
def test_a_cdr_with_or_without_the_api_pages_disposition_is_complete(
    disposition: str | None,
) -> None:
    """The webhook sample lacks ``disposition`` (the call-history API's): a CDR that sends it
    and one that does not both decode in one try; a null takes the precise path."""
    body = orjson.dumps(cdr() | ({} if disposition is None else {"disposition": disposition}))
    webhook = parse_webhook(body)
    assert type(webhook.payload) is not CallDetailRecord
    assert webhook.decoded is None
    assert webhook.payload == parse_webhook_precisely(body).payload
    assert isinstance(webhook.payload, CallDetailRecord)
    assert webhook.payload.disposition == disposition
    assert parse_webhook(orjson.dumps(cdr() | {"disposition": None})).decoded is not None


def test_a_complete_cdr_is_its_model_to_every_reader() -> None:
    """A CDR with every field decodes into a subclass that needs no count of nulls; it compares
    and prints like the precise path's, in both orders."""
    body = CDR_PATH.read_bytes()
    fast, precise = parse_webhook(body).payload, parse_webhook_precisely(body).payload
    assert type(fast) is not CallDetailRecord
    assert isinstance(fast, CallDetailRecord)
    assert fast == precise
    assert precise == fast
    assert not fast != precise  # noqa: SIM202 - the subclass defines != on its own
    assert not precise != fast  # noqa: SIM202
    assert repr(fast) == repr(precise)
    assert msgspec.json.encode(fast) == msgspec.json.encode(precise)
    unpickled = pickle.loads(pickle.dumps(fast))  # noqa: S301 - our own bytes
    assert type(unpickled) is CallDetailRecord
    assert unpickled == precise
    changed = msgspec.structs.replace(precise, call_out_price=1.5)
    assert fast != changed
    assert changed != fast
    assert not fast == changed  # noqa: SIM201


def test_a_complete_model_hashes_like_its_model() -> None:
    complete = _complete(LiveCallEvent)
    sample = parse_webhook_precisely(EVENT_PATH.read_bytes()).payload
    twin = complete(**msgspec.structs.asdict(sample))
    assert twin == sample
    assert hash(twin) == hash(sample)
    assert hash(pickle.loads(pickle.dumps(twin))) == hash(sample)  # noqa: S301
    assert {sample: 1}[twin] == 1


def test_a_complete_model_refuses_a_field_that_may_hold_none() -> None:
    class Loose(msgspec.Struct, frozen=True, kw_only=True):
        anything: Any = None

    with pytest.raises(TypeError, match="anything"):
        _complete(Loose)  # type: ignore[arg-type]


def _spliced(body: bytes, insert: bytes) -> bytes:
    """``insert`` (``"key":value``) added as the last member of the top-level object."""
    return body[:-1] + b"," + insert + b"}"


C, E = orjson.dumps(cdr()), orjson.dumps(event())
REQUIRED = ("transaction_id", "direction", "duration", "bill_sec", "time_start_call")


def _bare_cdr_with_tag(levels: int) -> bytes:
    """A CDR of its required fields and ``tag`` nested ``levels`` deep: all its brackets nest."""
    bare = orjson.dumps({key: cdr()[key] for key in REQUIRED})
    return _spliced(bare, b'"tag":' + b"[" * levels + b"]" * levels)


# Bodies a typed decode alone would accept, each with what the fast path must not let through.
TRAPS: list[tuple[str, bytes]] = [
    ("duplicate top-level key", _spliced(E, b'"hotline":"1"')),
    ("duplicate key in a nested object", C.replace(b'"id":', b'"id":"x","id":', 1)),
    ("unknown key offset by a colon in text", _spliced(E, b'"x":1').replace(b'"100"', b'"1:0"')),
    ("duplicate hidden by an escaped colon", _spliced(E, b'"hotline":"a\\u003ab"')),
    ("key spelled with an escape", _spliced(E, b'"st\\u0061te":"ringing"')),
    ("explicit null", E.replace(b'"hotline":"0868694566"', b'"hotline":null')),
    ("whitespace before a colon", _spliced(E, b'"x" : 1')),
    ("integer beyond 64 bits nested", C.replace(b'"id":"', b'"n":18446744073709551616,"id":"')),
    ("nested up to the limit", _bare_cdr_with_tag(MAX_DEPTH - 1)),
    ("nested one past the limit", _bare_cdr_with_tag(MAX_DEPTH)),
    ("a number as an id", E.replace(b'"100"', b"100")),
    ("a numeric string as a number", E.replace(b"1626693561,", b'"1626693561",')),
    ("a small CDR", orjson.dumps({k: cdr()[k] for k in ("transaction_id", "direction")})),
    ("a live event as long as a CDR", E[:-1] + b" " * 600 + b"}"),
    ("a complete CDR with a null", C.replace(b'"note":""', b'"note":null')),
]


@pytest.mark.parametrize(("name", "body"), TRAPS, ids=[name for name, _ in TRAPS])
def test_the_fast_path_agrees_with_the_precise_one_on_traps(name: str, body: bytes) -> None:
    assert_same_answer(body)


def test_nesting_limit_holds_in_known_containers() -> None:
    assert parse_webhook(_bare_cdr_with_tag(MAX_DEPTH - 1)).decoded is None  # the fast path's bound
    with pytest.raises(WebhookParseError) as refused:
        parse_webhook(_bare_cdr_with_tag(MAX_DEPTH))
    assert refused.value.code == "too_deep"


@st.composite
def mangled_bodies(draw: st.DrawFn) -> bytes:
    """A valid event or CDR, re-encoded with some of what JSON parsers disagree on."""
    value: dict[str, Any] = draw(st.one_of(events, cdrs))
    body = orjson.dumps(value, option=draw(st.sampled_from([0, orjson.OPT_INDENT_2])))
    for _ in range(draw(st.integers(0, 2))):
        key = draw(st.sampled_from([*value, "x", "n"]))
        member = orjson.dumps({key: draw(json_values)})[1:-1]
        where = draw(st.sampled_from(["top", "nested", "escaped"]))
        if where == "nested" and b'"create_by":{' in body:
            body = body.replace(b'"create_by":{', b'"create_by":{' + member + b",", 1)
        elif where == "escaped":  # an escaped colon that could offset the member's colon
            body = _spliced(body, member).replace(b'":"', b'":"\\u003a', 1)
        else:
            body = _spliced(body, member)
    return body


@settings(max_examples=400, deadline=None)
@given(mangled_bodies())
def test_the_fast_path_agrees_with_the_precise_one(body: bytes) -> None:
    assert_same_answer(body)


@settings(max_examples=200, deadline=None)
@given(st.one_of(events, cdrs))
def test_valid_bodies_agree_too(value: dict[str, Any]) -> None:
    assert_same_answer(orjson.dumps(value))


@pytest.mark.parametrize("field", ["call_uuid", "from_number", "to_number", "hotline"])
def test_a_colon_in_any_text_field_still_takes_the_fast_path(field: str) -> None:
    body = orjson.dumps({**event(), field: "sip:100"})
    assert parse_webhook(body).decoded is None
    assert_same_answer(body)


# Each container field's shape around an inner value (``user`` is an array of objects).
CONTAINERS: dict[str, Any] = {
    "create_by": lambda inner: {"x": inner},
    "customer": lambda inner: {"x": inner},
    "user": lambda inner: [{"x": inner}],
    "tag": lambda inner: [inner],
    "transfer_histories": lambda inner: [inner],
}


@pytest.mark.parametrize("field", CONTAINERS)
@pytest.mark.parametrize(("inner", "code"), [("deep", "too_deep"), (2**64, "number_too_large")])
def test_every_container_field_is_held_to_the_limits(field: str, inner: Any, code: str) -> None:
    if inner == "deep":
        inner = []
        for _ in range(MAX_DEPTH):
            inner = [inner]
    bare = {key: cdr()[key] for key in REQUIRED}
    body = msgspec.json.encode({**bare, field: CONTAINERS[field](inner)})
    with pytest.raises(WebhookParseError) as refused:
        parse_webhook(body)
    assert refused.value.code == code
    assert_same_answer(body)
