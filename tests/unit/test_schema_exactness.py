"""The published schemas of the provider topics accept a body exactly when the parser does,
except where JSON Schema cannot say it (docs/schemas.md, "What the schemas cannot say")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callstream.schemas.errors import WebhookParseError
from callstream.schemas.numeric import digits_up_to
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import parse_webhook
from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_for_kind
from tests.contract_support import JSON_NUMBER, committed, undescribed
from tests.unit.schema_fixtures import cdr, event

SAMPLES = {CALL_EVENTS: (event, LiveCallEvent), CDRS: (cdr, CallDetailRecord)}


def accepted(name: str, body: dict[str, Any]) -> bool:
    """The parser's verdict: parsed, and a payload of the kind that goes to topic ``name``."""
    try:
        return topic_for_kind(parse_webhook(json.dumps(body).encode()).kind) == name
    except WebhookParseError:
        return False


def fields(name: str) -> list[str]:
    return list(SAMPLES[name][1].__struct_fields__)


def verdicts(name: str, field: str, value: object) -> tuple[bool, bool]:
    """(schema, parser) verdicts on the sample of ``name`` with ``field`` set to ``value``."""
    body = {**SAMPLES[name][0](), field: value}
    return committed(name).is_valid(body), accepted(name, body)


# Hand-picked: every form the parser reads, both sides of every bound, and near misses.
STRINGS = [
    "0", "-0", "00", "01", "-1", "+1", " 1", "1 ", "1.", ".5", "1.0", "12.000", "12.5", "0.5",
    "-0.0", "-0.5", "0e5", "-0E-7", "0.000e+99", "5e0", "5E-00", "1e3", "1.5e1", "15e-1",
    "0x10", "1_0", "nan", "NaN", "inf", "-inf", "Infinity", "null", "NULL", "Null", "nul",
    "true", "TRUE", "tRuE", "false", "False", "yes", "t", "2", "", "10000000", "10000001",
    "2147483647", "2147483648", "253402300799", "253402300800", "253402300799999",
    "253402300800000", "1000000000000", "1000000000000.0", "1000000000000.5",
    "999999999999.99", "0.99999999999999999", "99999999999999999999",
]  # fmt: skip
NON_STRINGS = [
    None, True, False, 0, 1, -1, 2, 0.5, -0.5, 12.0, 10_000_000, 10_000_001, 2**31 - 1, 2**31,
    253_402_300_799, 253_402_300_800, 253_402_300_799_999, 253_402_300_800_000, 1e12, 1e12 + 1,
    2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 1e300, [], {}, [1], {"a": 2**64},
]  # fmt: skip


@pytest.mark.parametrize("name", list(SAMPLES))
def test_each_field_agrees_with_the_parser_on_hand_picked_values(name: str) -> None:
    disagree = []
    for field in fields(name):
        for value in [*STRINGS, *NON_STRINGS]:
            schema, parser = verdicts(name, field, value)
            if schema != parser and not undescribed(field, value):
                disagree.append((field, value, schema, parser))
    assert disagree == []


def test_the_gaps_are_accepted_by_the_parser_and_refused_by_the_schema() -> None:
    for value in ("1e3", "150e-1", "0.99999999999999999", "253402300799999.01"):
        assert verdicts(CALL_EVENTS, "date_time", value) == (False, True), value
    assert verdicts(CDRS, "call_out_price", "1e3") == (False, True)


def test_integral_floats_are_integers_to_json_schema_but_not_to_every_field() -> None:
    # Integer fields read 12.0 as 12, as the schema does; ids and booleans refuse a float.
    assert verdicts(CALL_EVENTS, "date_time", 12.0) == (True, True)
    assert verdicts(CALL_EVENTS, "call_uuid", 5.0) == (True, False)
    assert verdicts(CDRS, "is_auto_call", 1.0) == (True, False)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_unknown_fields_hold_any_json_with_integers_within_64_bits(name: str) -> None:
    for value in (2**64 - 1, -(2**63), [{"x": 2**64 - 1}], 0.5, "text", None, {"a": [True]}):
        assert verdicts(name, "x_unknown", value) == (True, True), value
    for value in (2**64, -(2**63) - 1, [{"x": 2**64}], {"a": [-(2**70)]}):
        assert verdicts(name, "x_unknown", value) == (False, False), value


def _patterns(name: str) -> list[tuple[str, str]]:
    model = committed(name).schema["$defs"][SAMPLES[name][1].__name__]
    found = []
    for field, node in model["properties"].items():
        for branch in node.get("anyOf", [node]):
            if "pattern" in branch:
                found.append((field, branch["pattern"]))
    return found


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_string_a_pattern_describes_is_accepted(name: str, data: st.DataObject) -> None:
    field, pattern = data.draw(st.sampled_from(_patterns(name)))
    # ECMA-262's $ ends the string; Python's also matches before a final newline.
    value = data.draw(st.from_regex(pattern.removesuffix("$") + r"\Z"))
    assert verdicts(name, field, value) == (True, True)


numberish = st.text(alphabet="0123456789-+.eE", max_size=20) | st.from_regex(
    JSON_NUMBER, fullmatch=True
)
values = (
    numberish
    | st.text(alphabet="nulNULtrefasTRUEFAS", max_size=6)
    | st.text(max_size=6).filter(lambda text: not text.endswith("\n"))
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=400)
@given(data=st.data())
def test_any_value_in_any_field_gets_the_same_verdict(name: str, data: st.DataObject) -> None:
    field = data.draw(st.sampled_from([*fields(name), "x_unknown"]))
    value = data.draw(values)
    schema, parser = verdicts(name, field, value)
    if not undescribed(field, value):
        assert schema == parser, (field, value)


@given(high=st.integers(0, 10**16), value=st.integers(0, 10**17))
def test_digits_up_to_matches_exactly_the_integers_in_range(high: int, value: int) -> None:
    pattern = re.compile(digits_up_to(high))
    assert bool(pattern.fullmatch(str(value))) == (value <= high)
    assert not pattern.fullmatch(f"0{value}")
