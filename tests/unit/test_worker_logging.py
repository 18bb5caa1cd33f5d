"""faust's Worker sets up logging itself; given the worker's config it keeps one handler: the
services' JSON lines, redacted (callstream/logs.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from mode.utils.logging import setup_logging

from callstream.logs import JsonFormatter
from callstream.processors.runtime import logging_config
from callstream.redact import RedactTokens


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_faust_s_logging_set_up_leaves_one_json_handler(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    # What faust.Worker does with its logging_config argument (mode's Worker._setup_logging).
    setup_logging(loglevel="info", logging_config=logging_config("INFO"))
    [handler] = root_logging.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert any(isinstance(found, RedactTokens) for found in handler.filters)
    assert root_logging.level == logging.INFO
    logging.getLogger("aiokafka.consumer").info("Joined group %s", "g")
    line = orjson.loads(stderr.getvalue())
    assert (line["logger"], line["msg"]) == ("aiokafka.consumer", "Joined group g")
