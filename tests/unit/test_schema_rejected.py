"""rejected_webhook: the record of a refused body keeps the bytes and the reason."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from callstream.schemas.errors import WebhookParseError
from callstream.schemas.parse import parse_webhook
from callstream.schemas.rejected import RejectedWebhook, rejected_webhook
from tests.unit.schema_fixtures import cdr, with_


def refused(body: bytes) -> WebhookParseError:
    with pytest.raises(WebhookParseError) as caught:
        parse_webhook(body)
    return caught.value


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(with_(cdr(), duration=-1), "utf-8"), (b'{"a":"\xff\xfe"}', "base64")],
)
def test_the_body_survives_the_topic(body: bytes, encoding: str) -> None:
    error = refused(body)
    record = rejected_webhook(error, body, received_at_ms=1_700_000_000_000)
    wire = msgspec.json.encode(record)
    back = msgspec.json.decode(wire, type=RejectedWebhook)
    assert back.raw_body() == body
    assert back.body_encoding == encoding
    assert (back.code, back.field, back.category) == (error.code, error.field, error.category)
    assert orjson.loads(wire)["body_bytes"] == len(body)


def test_the_call_is_named_when_known() -> None:
    body = with_(cdr(), duration=-1)
    record = rejected_webhook(refused(body), body, received_at_ms=0)
    assert (record.kind, record.call_id) == ("cdr", cdr()["transaction_id"])
