"""The schemathesis hook drops only the data checks' verdicts JSON Schema cannot avoid."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.integration.schemathesis_hooks import BODY_LIMIT, filter_failure
from tests.unit.schema_fixtures import cdr, event


def kept(code: str, body: object, status: int = 422) -> bool:
    failure = SimpleNamespace(code=code)
    case = SimpleNamespace(body=body)
    return filter_failure(None, failure, case, SimpleNamespace(status_code=status))


@pytest.mark.parametrize(
    "body",
    [
        {**event(), "call_uuid": 8649.0},  # JSON Schema: an integer; the parser: not an id
        {**cdr(), "is_auto_call": 1.0},
        {**cdr(), "x": {"y": [1e30]}},  # an integer beyond 64 bits to JSON Schema, not to msgspec
        {**event(), "date_time": "1e3"},  # a pattern cannot follow the exponent
        {**event(), "date_time": "0.99999999999999999"},  # nor a double's rounding
    ],
)
def test_a_data_verdict_on_an_undescribed_body_is_dropped(body: object) -> None:
    assert not kept("ST202", body)
    assert not kept("ST201", body, 200)


@pytest.mark.parametrize(
    "body",
    [
        event(),
        {**event(), "call_uuid": 8649},
        {**event(), "date_time": 12.0},  # both read 12
        {**event(), "to_number": "1e3"},  # text, not a number: nothing undescribed
        {**cdr(), "x": 1.5},
        [event()],
    ],
)
def test_every_other_failure_is_kept(body: object) -> None:
    assert kept("ST202", body)
    assert kept("ST201", body, 200)
    assert kept("ST202", body, 413)  # not over the limit
    assert kept("ST100", {**cdr(), "is_auto_call": 1.0})  # another check: always kept


def test_a_refusal_of_a_body_over_the_limit_is_dropped() -> None:
    big = {**event(), "x": "a" * BODY_LIMIT}
    assert not kept("ST202", big, 413)
    assert kept("ST202", big, 422)
