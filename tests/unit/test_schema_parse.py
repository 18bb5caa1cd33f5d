"""parse_webhook: the samples, the leniencies it promises, and every refusal with its code."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from callstream.schemas.errors import ERROR_CODES, MALFORMED_CODES, WebhookParseError
from callstream.schemas.jsonsafe import MAX_DEPTH
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import Webhook, encode_webhook, parse_webhook, to_builtins
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_for_kind
from tests.unit.schema_fixtures import CDR_PATH, EVENT_PATH, cdr, event, with_


def refusal(body: bytes) -> WebhookParseError:
    with pytest.raises(WebhookParseError) as caught:
        parse_webhook(body)
    return caught.value


@pytest.mark.parametrize(
    ("path", "model", "topic"),
    [(CDR_PATH, CallDetailRecord, CDRS), (EVENT_PATH, LiveCallEvent, CALL_EVENTS)],
)
def test_samples_parse_and_round_trip(path: Any, model: type, topic: str) -> None:
    body = path.read_bytes()
    webhook = parse_webhook(body)
    assert isinstance(webhook.payload, model)
    assert webhook.extra == {}
    assert topic_for_kind(webhook.kind) == topic
    assert orjson.loads(encode_webhook(webhook)) == orjson.loads(body)
    assert list(to_builtins(webhook)) == list(orjson.loads(body))  # order kept too


def test_call_id_is_the_same_name_for_both_kinds() -> None:
    live = parse_webhook(with_(event(), call_uuid="c-1"))
    record = parse_webhook(with_(cdr(), transaction_id="c-1"))
    assert (live.call_id, record.call_id) == ("c-1", "c-1")
    assert (live.kind, record.kind) == ("event", "cdr")


def test_unknown_fields_are_kept_and_round_trip() -> None:
    extras = {"campaign": {"id": 7, "tags": ["a", None]}, "score": 0.5, "state_v2": "x"}
    body = orjson.dumps({**cdr(), **extras})
    webhook = parse_webhook(body)
    assert webhook.extra == extras
    assert orjson.loads(encode_webhook(webhook)) == orjson.loads(body)


def test_explicit_null_stays_null_and_absent_stays_absent() -> None:
    body = with_(cdr(), note=None, ivr=...)
    webhook = parse_webhook(body)
    assert isinstance(webhook.payload, CallDetailRecord)
    assert webhook.payload.note is None
    out = to_builtins(webhook)
    assert out["note"] is None
    assert "ivr" not in out


def test_numeric_strings_become_numbers() -> None:
    webhook = parse_webhook(
        with_(cdr(), duration="12", call_out_price="55.002", time_start_call="1697595783")
    )
    assert isinstance(webhook.payload, CallDetailRecord)
    assert (webhook.payload.duration, webhook.payload.call_out_price) == (12, 55.002)
    assert webhook.payload.time_start_call == 1697595783
    assert to_builtins(webhook)["duration"] == 12  # normalised on the way out


def test_ids_sent_as_numbers_become_strings() -> None:
    webhook = parse_webhook(with_(event(), call_uuid=12345, from_number=100))
    assert isinstance(webhook.payload, LiveCallEvent)
    assert (webhook.call_id, webhook.payload.from_number) == ("12345", "100")


@pytest.mark.parametrize(("sent", "kept"), [(True, True), (0, False), ("true", True), ("0", False)])
def test_booleans_accept_the_lax_forms(sent: object, kept: bool) -> None:
    webhook = parse_webhook(with_(cdr(), is_auto_call=sent))
    assert isinstance(webhook.payload, CallDetailRecord)
    assert webhook.payload.is_auto_call is kept


def test_a_cdr_without_state_is_recognised_by_its_transaction_id() -> None:
    webhook = parse_webhook(with_(cdr(), state=...))
    assert webhook.kind == "cdr"
    assert "state" not in to_builtins(webhook)


def test_escaped_colon_without_duplicates_is_accepted() -> None:
    body = orjson.dumps(cdr())[:-1] + b',"x":"a\\u003ab"}'
    assert parse_webhook(body).extra == {"x": "a:b"}


def test_nesting_up_to_the_limit_is_accepted_and_one_more_is_not() -> None:
    def nested(levels: int) -> bytes:  # the top-level object is level 1
        return orjson.dumps(cdr())[:-1] + b',"deep":' + b"[" * levels + b"]" * levels + b"}"

    assert isinstance(parse_webhook(nested(MAX_DEPTH - 1)), Webhook)
    error = refusal(nested(MAX_DEPTH))
    assert (error.code, error.category) == ("too_deep", "malformed")
    assert error.field is not None
    assert error.field.startswith("deep")


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _invalid_unicode_key() -> bytes:
    return b'{"state":"ringing","\xff":1}'


E = event()
C = cdr()
# (body, code, field): one line per refusal the parser promises.
REFUSALS: list[tuple[bytes, str, str | None]] = [
    (b"", "empty_body", None),
    (b" \r\n\t", "empty_body", None),
    (b"{", "invalid_json", None),
    (b"call_uuid=1&state=ringing", "invalid_json", None),
    (b'{"state":"ringing","x":NaN}', "invalid_json", None),
    (b'{"state":"ringing","x":-Infinity}', "invalid_json", None),
    (b'{"state":"ringing"} {}', "invalid_json", None),
    (b"\xef\xbb\xbf" + orjson.dumps(E), "invalid_json", None),
    (b'{"state":"ringing","x":"\\ud800"}', "invalid_unicode", None),
    (b'{"state":"ringing","x":"\\udc00x"}', "invalid_unicode", None),
    (_invalid_unicode_key(), "invalid_unicode", None),
    (b'{"state":"ringing","x":1e400}', "number_too_large", None),
    (with_(E, x=2**64), "number_too_large", "x"),
    (with_(E, d=_nested(MAX_DEPTH)), "too_deep", "d" + "[0]" * (MAX_DEPTH - 1)),
    (with_(E, x={"y": [-(2**63) - 1]}), "number_too_large", "x.y[0]"),
    (b"[]", "not_object", None),
    (b'"cdr"', "not_object", None),
    (b"null", "not_object", None),
    (orjson.dumps(E)[:-1] + b',"state":"hangup"}', "duplicate_key", "state"),
    (orjson.dumps(E)[:-1] + b',"sta\\u0074e":"hangup"}', "duplicate_key", "state"),
    (orjson.dumps(E)[:-1] + b',"x":{"k":1,"k":2}}', "duplicate_key", "k"),
    (orjson.dumps(E)[:-1] + b',"n":1,"n":"\\u003a"}', "duplicate_key", "n"),
    (with_(E, state=...), "missing_field", "state"),
    (with_(E, state=None), "missing_field", "state"),
    (with_(E, state=3), "wrong_type", "state"),
    (with_(E, state="Ringing"), "unknown_state", "state"),
    (with_(E, state=""), "unknown_state", "state"),
    (with_(E, call_uuid=...), "missing_field", "call_uuid"),
    (with_(E, call_uuid=""), "empty_value", "call_uuid"),
    (with_(E, call_uuid=True), "wrong_type", "call_uuid"),
    (with_(E, call_uuid="x" * 129), "value_too_long", "call_uuid"),
    (with_(E, direction="sideways"), "invalid_value", "direction"),
    (with_(E, direction=None), "wrong_type", "direction"),
    (with_(E, date_time=-1), "number_out_of_range", "date_time"),
    (with_(E, date_time="soon"), "wrong_type", "date_time"),
    (with_(E, date_time=" 12"), "wrong_type", "date_time"),
    (with_(E, date_time=1.5), "wrong_type", "date_time"),
    (with_(E, date_time=2**63), "number_out_of_range", "date_time"),
    (with_(C, duration=...), "missing_field", "duration"),
    (with_(C, state=..., duration=...), "missing_field", "duration"),
    (with_(C, transaction_id=12.5), "wrong_type", "transaction_id"),
    (with_(C, call_out_price=-1), "number_out_of_range", "call_out_price"),
    (with_(C, call_out_price="nan"), "number_out_of_range", "call_out_price"),
    (with_(C, call_out_price="inf"), "number_out_of_range", "call_out_price"),
    (with_(C, is_auto_call="yes"), "wrong_type", "is_auto_call"),
    (with_(C, is_auto_call=2), "wrong_type", "is_auto_call"),
    (with_(C, create_by=[]), "wrong_type", "create_by"),
    (with_(C, user=[1]), "wrong_type", "user[0]"),
    (with_(C, hotline="9" * 65), "value_too_long", "hotline"),
    (with_(C, tag="vip"), "wrong_type", "tag"),
]


@pytest.mark.parametrize(("body", "code", "field"), REFUSALS)
def test_each_refusal_has_its_code_and_field(body: bytes, code: str, field: str | None) -> None:
    error = refusal(body)
    assert (error.code, error.field) == (code, field)
    assert error.category == ("malformed" if code in MALFORMED_CODES else "invalid")
    assert code in str(error)
    if field is not None:
        assert repr(field) in str(error)


def test_the_refusals_cover_every_code() -> None:
    assert {code for _, code, _ in REFUSALS} == set(ERROR_CODES)


def test_invalid_refusals_say_which_call_they_were_about() -> None:
    error = refusal(with_(C, duration=-5))
    assert (error.kind, error.call_id) == ("cdr", C["transaction_id"])
    error = refusal(with_(E, direction="up", call_uuid=42))
    assert (error.kind, error.call_id) == ("event", "42")
    assert refusal(b"[]").call_id is None
