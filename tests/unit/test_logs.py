"""The services' JSON log lines: tokens redacted by position, clients' HTTP errors as warnings."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
)

from callstream.logs import json_log_handler
from callstream.redact import REDACTED, redact

TOKEN = "s3cret-token-" + "0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        f"POST /webhooks/omicall/{TOKEN} HTTP/1.1",
        f"b'POST /webhooks/omicall/{TOKEN}\\x01 HTTP/1.1'",
        f"bytearray(b'/webhooks/omicall/{TOKEN}?aaaa...')",
        f"http://host:8080/webhooks/omicall/{TOKEN}#x",
        f"/Webhooks//OMICALL%2F{TOKEN}/more",
        f"X-Callstream-Token: {TOKEN}",
        f"b'x-callstream-token:{TOKEN}\\x01'",
        f"<CIMultiDictProxy('Host': 'x', 'X-Callstream-Token': '{TOKEN}', 'A': 'b')>",
        f'{{"X-Callstream-Token": "{TOKEN}"}}',
        f"X-Callstream-Token: {TOKEN}\r\nHost: x",
    ],
)
def test_tokens_are_found_by_where_they_stand(text: str) -> None:
    redacted = redact(text)
    assert TOKEN not in redacted
    assert REDACTED in redacted


def test_text_without_a_token_is_left_alone() -> None:
    for text in ("/webhooks/omicall/{token}", "/webhooks/omicall", "request", "GET /metrics"):
        assert redact(text) == text


def _lines(records: list[logging.LogRecord]) -> list[dict[str, object]]:
    stream = io.StringIO()
    handler = json_log_handler(stream)
    for record in records:
        handler.handle(record)
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def _record(name: str, level: int, msg: str, *args: object, **fields: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": name, "levelno": level, "msg": msg, **fields})
    record.levelname = logging.getLevelName(level)
    record.args = args or None
    return record


def test_every_part_of_a_line_is_redacted() -> None:
    try:
        raise ValueError(f"no route for /webhooks/omicall/{TOKEN}")
    except ValueError as error:
        failed = _record(
            "callstream.ingest", logging.ERROR, "failed on %s", f"/webhooks/omicall/{TOKEN}"
        )
        failed.exc_info = (type(error), error, error.__traceback__)
    access = _record(
        "aiohttp.access",
        logging.INFO,
        f'"POST /webhooks/omicall/{TOKEN} HTTP/1.1" 200',
        first_request_line=f"POST /webhooks/omicall/{TOKEN} HTTP/1.1",
        request_header={"X-Callstream-Token": TOKEN, "User-Agent": "-"},
        several=[f"x-callstream-token: {TOKEN}"],
    )
    ours = _record("callstream.ingest", logging.INFO, "request", route="/webhooks/omicall/{token}")
    lines = _lines([failed, access, ours])
    assert TOKEN not in orjson.dumps(lines).decode()
    assert "ValueError: no route for /webhooks/omicall/<redacted>" in str(lines[0]["exc"])
    assert lines[1]["request_header"] == {"X-Callstream-Token": REDACTED, "User-Agent": "-"}
    assert lines[2]["route"] == "/webhooks/omicall/{token}"


@pytest.mark.parametrize(
    "error",
    [
        LineTooLong(f"bytearray(b'/webhooks/omicall/{TOKEN}?aaaa...')", "8190"),
        InvalidURLError(
            f"Invalid char in url path:\n\n  b'POST /webhooks/omicall/{TOKEN}\\x01 HTTP/1.1'\n  ^"
        ),
        BadHttpMessage(f"Invalid header value char:\n\n  b'X-Callstream-Token: {TOKEN}\\x01'"),
        # The parser quotes a header's value without its name, or a path the redaction cannot
        # place (a percent-encoded route): the line must not quote the client's bytes at all.
        LineTooLong(f"{TOKEN}aaaa".encode() + b"...", "8190"),
        LineTooLong(f"bytearray(b'/webhooks/%6fmicall/{TOKEN}?aaaa...')", "8190"),
        InvalidHeader(f"{TOKEN}\x00".encode()),
        InvalidURLError(f"webhooks/%6fmicall/{TOKEN}"),
        BadStatusLine(f"POST /webhooks/%6fmicall/{TOKEN} HTTP/9"),
    ],
)
def test_a_clients_protocol_error_is_one_warning_line(error: Exception) -> None:
    record = _record("aiohttp.server", logging.ERROR, "Error handling request from %s", "1.2.3.4")
    record.exc_info = (type(error), error, None)
    [line] = _lines([record])
    assert line["level"] == "warning"
    assert "exc" not in line
    assert str(line["msg"]).startswith("Error handling request from 1.2.3.4: ")
    assert "\n" not in str(line["msg"])
    assert TOKEN not in str(line)


def test_a_protocol_error_logged_at_debug_stays_there_and_an_error_below_warning_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    method = _record("aiohttp.server", logging.DEBUG, "Error handling request from %s", "x")
    method.exc_info = (BadHttpMethod, BadHttpMethod("GARBAGE"), None)
    [line] = _lines([method])
    assert line["level"] == "debug"
    assert "exc" not in line
    caplog.set_level(logging.ERROR, logger="aiohttp.server")
    quiet = _record("aiohttp.server", logging.ERROR, "Error handling request from %s", "x")
    quiet.exc_info = (InvalidURLError, InvalidURLError("bad"), None)
    assert _lines([quiet]) == []  # a warning, where only errors are wanted


def test_a_line_that_cannot_be_rendered_is_replaced_not_raised_nor_leaked() -> None:
    record = _record("callstream.ingest", logging.WARNING, f"{TOKEN} %d", "not a number")
    [line] = _lines([record])
    assert line["msg"] == "a log line could not be redacted"
    assert line["level"] == "warning"
