"""Property: any valid event or CDR in normal form, with any extra fields, round-trips."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import encode_webhook, parse_webhook

KNOWN = set(LiveCallEvent.__struct_fields__) | set(CallDetailRecord.__struct_fields__)
ids = st.text(min_size=1, max_size=40)
numbers = st.text(alphabet="0123456789+", max_size=15)
seconds = st.integers(0, 10_000_000)
epoch_s = st.integers(0, 253_402_300_799)
epoch_ms = st.integers(0, 253_402_300_799_999)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
extras = st.dictionaries(
    st.text(max_size=12).filter(lambda k: k not in KNOWN), json_values, max_size=4
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any subset of ``fields``, each present with a value or explicitly null."""
    return st.fixed_dictionaries({}, optional={k: v | st.none() for k, v in fields.items()})


events = st.builds(
    lambda required, rest, extra: {**required, **rest, **extra},
    st.fixed_dictionaries(
        {
            "call_uuid": ids,
            "state": st.sampled_from(["ringing", "answered", "hangup"]),
            "direction": st.sampled_from(["inbound", "outbound", "local"]),
            "date_time": epoch_ms,
        }
    ),
    optional(created_time=epoch_s, from_number=numbers, to_number=numbers, hotline=numbers),
    extras,
)
cdrs = st.builds(
    lambda required, rest, extra: {**required, **rest, **extra},
    st.fixed_dictionaries(
        {
            "transaction_id": ids,
            "direction": st.sampled_from(["inbound", "outbound", "local"]),
            "duration": seconds,
            "bill_sec": seconds,
            "time_start_call": epoch_s,
        }
    ),
    optional(
        state=st.just("cdr"),
        answer_sec=seconds,
        disposition=st.sampled_from(["answered", "cancelled", "", "busy"]),
        call_out_price=st.floats(0, 1e12),
        is_auto_call=st.booleans(),
        sip_user=numbers,
        note=st.text(max_size=30),
        create_by=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        user=st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=2), max_size=2),
        tag=st.lists(json_values, max_size=3),
    ),
    extras,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(events, cdrs))
def test_encode_of_parse_is_the_input(body: dict[str, Any]) -> None:
    webhook = parse_webhook(orjson.dumps(body))
    assert orjson.loads(encode_webhook(webhook)) == body
    assert webhook.extra == {
        k: v for k, v in body.items() if k not in webhook.payload.__struct_fields__
    }
