"""What the ingress publishes, checked as a consumer would: against the committed JSON Schemas
and the headers the AsyncAPI document declares."""

from __future__ import annotations

import orjson

from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED
from tests.contract_support import committed, headers_validator
from tests.integration.ingress_support import TOKEN, ingress_settings, running_ingress, sample
from tests.kafka_support import read_topic

JSON = {"Content-Type": "application/json"}


async def test_published_records_match_their_schemas_and_declared_headers(
    kafka_bootstrap: str,
) -> None:
    invalid = orjson.dumps({**orjson.loads(sample("event-ringing.json")), "direction": "up"})
    async with running_ingress(ingress_settings(kafka_bootstrap)) as ingress:
        posts = [
            await ingress.client.post(
                ingress.url(), data=sample("event-ringing.json"), headers=JSON
            ),
            await ingress.client.post(
                "/webhooks/omicall",
                data=sample("cdr.json"),
                headers={**JSON, "X-Callstream-Token": TOKEN, "X-Request-Id": "provider.42"},
            ),
            await ingress.client.post(ingress.url(), data=invalid, headers=JSON),
        ]
        assert [post.status for post in posts] == [200, 200, 422]
        published = {
            name: await read_topic(kafka_bootstrap, ingress.topics[name], expect=1)
            for name in (CALL_EVENTS, CDRS, REJECTED)
        }
    for name, records in published.items():
        assert len(records) == 1, name
        (record,) = records
        assert committed(name).is_valid(orjson.loads(record.value)), name
        headers = {key: value.decode() for key, value in record.headers}
        validator = headers_validator(name)
        assert list(validator.iter_errors(headers)) == [], name
        assert set(headers) == set(validator.schema["properties"]), name  # no undeclared one
