"""JSONTestSuite: hostile JSON gets the parser's own error, never an exception from deeper down."""

from __future__ import annotations

from pathlib import Path

import pytest

from callstream.schemas.errors import WebhookParseError
from callstream.schemas.parse import Webhook, parse_webhook
from tests.unit.schema_fixtures import JSONTESTSUITE

CASES = sorted(JSONTESTSUITE.glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.name)
def test_every_file_gets_a_webhook_or_our_error(path: Path) -> None:
    result: Webhook | WebhookParseError
    try:
        result = parse_webhook(path.read_bytes())
    except WebhookParseError as error:
        result = error
    if isinstance(result, Webhook):
        assert path.name.startswith("y_"), "only valid JSON may parse"
    elif path.name.startswith("n_"):
        assert result.category == "malformed"


def test_the_corpus_is_the_full_suite() -> None:
    names = {path.name[:2] for path in CASES}
    assert names == {"y_", "n_", "i_"}
    assert len(CASES) >= 300
