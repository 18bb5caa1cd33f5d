"""Replay files: each line's body (exact bytes), its time and its call id; capture lines read
back to the bytes the record held."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callstream.traffic.delivery import Delivery
from callstream.traffic.recording import (
    LineError,
    body_time_ms,
    capture_line,
    deliveries,
    read_line,
)

SAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "samples"


def _sample(name: str) -> dict[str, object]:
    parsed: dict[str, object] = orjson.loads((SAMPLES / name).read_bytes())
    return parsed


@dataclass(frozen=True)
class Record:
    topic: str = "p.omicall.cdrs"
    partition: int = 2
    offset: int = 7
    timestamp: int = 1_700_000_000_123
    key: bytes | None = b"call-1"
    value: bytes | None = b'{"a": 1}'


def test_a_live_event_is_timed_by_its_date_time_in_ms() -> None:
    assert body_time_ms(_sample("event-ringing.json")) == 1626693561000


def test_a_cdr_is_timed_by_its_last_update_then_its_creation() -> None:
    cdr = _sample("cdr.json")
    assert body_time_ms(cdr) == 1697595795853
    del cdr["last_updated_date"]
    assert body_time_ms(cdr) == 1697595795704


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"time_end_call": 1697595795, "time_start_call": 1697595783}, 1697595795000),
        ({"time_start_call": "1697595783"}, 1697595783000),
        ({"date_time": "1626693561000"}, 1626693561000),
        ({"date_time": None, "time_end_call": 10}, 10000),
        ({"date_time": True}, None),
        ({"date_time": "soon", "created_date": -5}, None),
        ({"state": "ringing"}, None),
    ],
)
def test_body_times(body: dict[str, object], expected: float | None) -> None:
    assert body_time_ms(body) == expected


def test_a_raw_body_is_posted_as_the_lines_bytes_with_its_call_id() -> None:
    line = b'{"call_uuid": "c-1",  "state": "ringing", "date_time": 5000}'
    recorded = read_line(line)
    assert (recorded.body, recorded.time_ms, recorded.call_id) == (line, 5000, "c-1")
    assert read_line(b'{"transaction_id": "t-9"}').call_id == "t-9"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'"text"', "not a JSON object but str"),
        (b'{"topic": "t", "timestamp_ms": 1, "body": null}', "without a body"),
        (b'{"topic": "t", "timestamp_ms": 1, "body_base64": "***"}', "not base64"),
    ],
)
def test_lines_that_cannot_be_posted_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        read_line(line)


def test_a_capture_line_posts_the_records_exact_bytes_at_its_timestamp() -> None:
    value = '{"transaction_id":"t-1", "note": "Trần \\u00e9"}'.encode()
    line = capture_line(Record(value=value))
    parsed = orjson.loads(line)
    assert parsed["body"] == {"transaction_id": "t-1", "note": "Trần é"}
    assert parsed["key"] == "call-1"
    recorded = read_line(line.rstrip(b"\n"))
    assert (recorded.body, recorded.time_ms, recorded.call_id) == (
        value,
        1_700_000_000_123,
        "call-1",
    )


def test_a_value_that_is_not_utf8_is_kept_as_base64() -> None:
    line = orjson.loads(capture_line(Record(key=b"\xff", value=b"\xfe{")))
    assert "body" not in line
    assert "body_text" not in line
    assert base64.b64decode(line["body_base64"]) == b"\xfe{"
    assert base64.b64decode(line["key_base64"]) == b"\xff"


def test_a_hand_written_capture_line_with_only_a_body_is_posted_re_encoded() -> None:
    line = b'{"topic": "t", "timestamp_ms": 9, "key": null, "body": {"a":  1}}'
    assert read_line(line).body == b'{"a":1}'


@given(value=st.binary(max_size=200), key=st.none() | st.binary(max_size=20))
def test_capture_then_read_gives_back_the_records_bytes(value: bytes, key: bytes | None) -> None:
    line = capture_line(Record(key=key, value=value))
    assert line.endswith(b"\n")
    assert b"\n" not in line[:-1]
    assert read_line(line[:-1]).body == value


def _timeline(lines: list[bytes]) -> tuple[list[Delivery], list[tuple[int, str]]]:
    skipped: list[tuple[int, str]] = []
    return list(deliveries(lines, lambda n, why: skipped.append((n, why)))), skipped


def test_lines_keep_their_relative_time_and_file_order() -> None:
    sent, skipped = _timeline(
        [
            b'{"state": "early", "date_time": 1000000}\n',
            b'{"state": "later", "date_time": 1002500}\r\n',
            b'{"state": "untimed"}\n',
            b"\n",
            b"garbage\n",
            b'{"state": "out of order", "date_time": 1001000}\n',
            b'{"state": "cdr", "time_end_call": 1004}\n',
        ]
    )
    assert [d.at_s for d in sent] == [0.0, 2.5, 2.5, 2.5, 4.0]
    assert sent[1].body == b'{"state": "later", "date_time": 1002500}'
    assert [n for n, _ in skipped] == [5]
    assert "not JSON" in skipped[0][1]


def test_untimed_lines_before_the_first_timed_one_start_at_zero() -> None:
    sent, _ = _timeline([b"{}", b'{"date_time": 50000}', b'{"date_time": 51000}'])
    assert [d.at_s for d in sent] == [0.0, 0.0, 1.0]


def test_capture_lines_are_timed_by_their_record_timestamp() -> None:
    first = capture_line(Record(timestamp=10_000))
    second = capture_line(Record(timestamp=10_250, value=b'{"date_time": 1}'))
    sent, _ = _timeline([first, second])
    assert [d.at_s for d in sent] == [0.0, 0.25]


def test_deliveries_are_read_lazily() -> None:
    def endless() -> Iterator[bytes]:
        number = 0
        while True:
            number += 1
            yield b'{"date_time": %d}' % (1000 + number)

    stream = deliveries(endless(), lambda _n, _why: None)
    assert next(stream).at_s == 0.0
    assert next(stream).at_s == pytest.approx(0.001)
