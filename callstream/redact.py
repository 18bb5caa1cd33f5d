"""Webhook tokens out of every log line, found by where they stand.

The settings keep only the tokens' digests, so their values cannot be searched for: what follows
``/webhooks/omicall/`` in a path, and the value of an ``X-Callstream-Token`` header, is replaced
wherever it appears (a message, its arguments, an exception's text, a field of the line),
including in the request lines and headers aiohttp quotes when a client's HTTP is malformed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "<redacted>"
_ROUTE_TEMPLATE = "{token}"  # the route's name in our own lines: no secret
_KEPT_ON_FAILURE = ("name", "levelno", "levelname", "created", "msecs")

# A path segment ends at "/", "?", "#", whitespace or a quote (the path may be quoted in a repr);
# percent-encoded slashes count as slashes. A header value ends at a quote or a line end.
_TOKEN = re.compile(
    r"(?P<path>webhooks(?:/|%2f)+omicall(?:/|%2f)+)(?P<segment>[^/?#\s'\"]+)"
    r"|(?P<header>x-callstream-token['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]+",
    re.IGNORECASE,
)


def _replace(match: re.Match[str]) -> str:
    if match["path"] is not None:
        if match["segment"] == _ROUTE_TEMPLATE:
            return match[0]
        return match["path"] + REDACTED
    return match["header"] + REDACTED


def redact(text: str) -> str:
    """``text`` with every path token and token header value replaced by ``<redacted>``."""
    return _TOKEN.sub(_replace, text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() == "x-callstream-token" else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return redact(str(value))  # what the line would show of it


class RedactTokens(logging.Filter):
    """A handler filter: every record reaching the handler, from any logger (aiohttp's too),
    leaves with its text redacted. The message is rendered here (its arguments may hold the
    token) and so is the exception's traceback; a record that cannot be rendered is replaced,
    never let through."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = record.getMessage()
            record.args = None
            if record.exc_info:
                record.exc_text = self._formatter.formatException(record.exc_info)
                record.exc_info = None
            for key, value in list(vars(record).items()):
                setattr(record, key, _scrub(value))
        except Exception:  # a log call must neither raise nor leak
            kept = {key: getattr(record, key) for key in _KEPT_ON_FAILURE}
            stand_in = logging.makeLogRecord({**kept, "msg": "a log line could not be redacted"})
            record.__dict__.clear()
            record.__dict__.update(vars(stand_in))
        return True
