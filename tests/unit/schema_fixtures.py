"""Shared inputs of the schema tests: the provider samples and builders of variants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "schemas" / "samples"
CDR_PATH = SAMPLES / "cdr.json"
EVENT_PATH = SAMPLES / "event-ringing.json"
# The JSONTestSuite corpus, copied into tests/data (see its README).
JSONTESTSUITE = ROOT / "tests" / "data" / "jsontestsuite" / "test_parsing"


def cdr() -> dict[str, Any]:
    """A fresh copy of the CDR sample."""
    value: dict[str, Any] = orjson.loads(CDR_PATH.read_bytes())
    return value


def event() -> dict[str, Any]:
    """A fresh copy of the ringing live-event sample."""
    value: dict[str, Any] = orjson.loads(EVENT_PATH.read_bytes())
    return value


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    """``base`` with fields replaced (a value of ``...`` removes the field), as JSON bytes."""
    value = dict(base)
    for key, new in changes.items():
        if new is ...:
            value.pop(key, None)
        else:
            value[key] = new
    return msgspec.json.encode(value)  # unlike orjson, it writes integers beyond 64 bits
