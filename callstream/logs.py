"""Structured (JSON) log lines for the services: one object per line on stderr, no token in any."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

import orjson
from aiohttp.http import HttpProcessingError
from aiohttp.http_exceptions import InvalidURLError

from callstream.redact import RedactTokens

# Attributes every LogRecord has; anything else passed with ``extra=`` is a field of the line.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# The repr of the client's bytes that ends a parser's reason: ``: b'...'``, ``bytearray(b'...').``
_QUOTED = re.compile(r"""[\s:]*(?:bytearray\()?b?(['"]).*\1\)?\.?$""")


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <extra fields>}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class ClientProtocolErrors(logging.Filter):
    """aiohttp logs a client's malformed HTTP (a bad request line or header, a URL over 8 KiB) as
    an ERROR with a traceback, as if the server had failed. The client did: one warning line with
    the parser's reason (its first line; the rest quotes the request), no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and record.name.startswith("aiohttp."):
            record.msg = f"{record.getMessage()}: {_reason(error)}"
            record.args = record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                return logging.getLogger(record.name).isEnabledFor(logging.WARNING)
        return True


def _reason(error: HttpProcessingError) -> str:
    """What the parser found wrong, without the request bytes it quotes: a header value or a
    path may hold a token where the redaction cannot place it (a value over 8 KiB is quoted
    without its header's name, a percent-encoded route is routed but not recognised)."""
    first = error.message.strip().partition("\n")[0]
    if first.endswith(":"):  # llhttp's "<reason>:", the quoted bytes on the lines after
        return first.rstrip(":")
    if isinstance(error, InvalidURLError):  # its message is the URL itself
        return "Invalid URL"
    return _QUOTED.sub("", first)  # "<reason>: b'<bytes>'" (line too long, invalid header)


def json_log_handler(stream: TextIO) -> logging.Handler:
    """JSON lines on ``stream``: clients' protocol errors as warnings, every line redacted."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ClientProtocolErrors())
    handler.addFilter(RedactTokens())  # last: it sees the text the line will show
    return handler


def configure_json_logging(level: str = "INFO") -> None:
    """Route the root logger to stderr as JSON lines (idempotent); the handler's filters see
    every record, aiohttp's own included."""
    handler = json_log_handler(sys.stderr)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
