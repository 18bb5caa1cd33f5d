"""The query API's parameters: what each accepts, and a reason for every refusal."""

from __future__ import annotations

import pytest

from callstream.processors.params import (
    DEFAULT_SPAN_MS,
    MAX_TIME_MS,
    MAX_WINDOWS,
    BadRequest,
    LiveQuery,
    MetricsQuery,
    parse_live_query,
    parse_metrics_query,
    parse_time,
    window_span_ms,
)

NOW = 1_760_000_000_000
HOUR = 3_600_000


def metrics(dimension: str = "hotline", value: str | None = None, **query: str) -> MetricsQuery:
    pairs = [(name.rstrip("_"), given) for name, given in query.items()]
    return parse_metrics_query(dimension, value, pairs, NOW)


def refused(dimension: str = "hotline", value: str | None = None, **query: str) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        metrics(dimension, value, **query)
    return caught.value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1760000000000", 1_760_000_000_000),
        ("2025-01-31T08:00:00+07:00", 1_738_285_200_000),
        ("2025-01-31T01:00:00Z", 1_738_285_200_000),
        ("2025-01-31t01:00:00z", 1_738_285_200_000),
        ("2025-01-31T01:00:00", 1_738_285_200_000),  # no zone: UTC
        ("2025-01-31 01:00", 1_738_285_200_000),
        ("2025-01-31T01:00:00.123456Z", 1_738_285_200_123),
        ("2025-01-31", 1_738_281_600_000),  # a date: its midnight, UTC
        ("1969-12-31T23:59:59Z", 0),  # before 1970: 1970
        ("0001-01-01T00:00:00-23:59", 0),
        ("9999-12-31T23:59:59.999999-23:59", MAX_TIME_MS),
        ("999999999999999", MAX_TIME_MS),
    ],
)
def test_times_are_epoch_milliseconds_or_iso_8601(text: str, expected: int) -> None:
    assert parse_time("from", text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2025-13-01", "2024-01-01T12:99:00Z", "-5", "1e12", "1760000000000.5",
     "1234567890123456", "2025-01-31T01:00:00+25:00", "٣٣٣"],
)  # fmt: skip
def test_a_time_that_is_neither_is_refused_with_its_parameter(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_time("to", text)
    assert caught.value.parameter == "to"
    assert caught.value.reason


def test_without_a_range_the_last_24_hours_in_hour_windows_as_json() -> None:
    assert metrics() == MetricsQuery("hotline", None, "1h", NOW - DEFAULT_SPAN_MS, NOW, "json")


def test_a_worker_counting_no_hour_windows_defaults_to_its_first_window() -> None:
    """A request without ``window`` is valid: its default must be a window the worker counts
    (CALLSTREAM_METRICS_WINDOWS may leave hours out), not a 400 naming a parameter not given."""
    query = parse_metrics_query("hotline", None, [], NOW, ("15m", "1d"))
    assert query.window == "15m"
    assert parse_metrics_query("hotline", None, [], NOW, ("1m", "1h")).window == "1h"


def test_one_end_of_the_range_gives_24_hours_from_or_to_it() -> None:
    assert (metrics(from_="1000").start_ms, metrics(from_="1000").end_ms) == (
        1000,
        1000 + 86_400_000,
    )
    assert (metrics(to=str(NOW - HOUR)).start_ms, metrics(to=str(NOW - HOUR)).end_ms) == (
        NOW - HOUR - DEFAULT_SPAN_MS,
        NOW - HOUR,
    )
    assert metrics(to="1000").start_ms == 0  # not before 1970


def test_a_full_query() -> None:
    query = metrics("agent", "101", window="1m", from_="2025-01-31", to="2025-02-01", format="csv")
    assert query == MetricsQuery("agent", "101", "1m", 1_738_281_600_000, 1_738_368_000_000, "csv")
    assert metrics(from_="5", to="5").end_ms == 5  # an empty range is no error: no windows


def test_all_has_the_one_value_all() -> None:
    assert metrics("all").value == "all"
    assert refused("all", "all").parameter == "value"
    assert refused("all", "x").parameter == "value"


@pytest.mark.parametrize(
    ("dimension", "query", "parameter"),
    [
        ("queue", {}, "dimension"),
        ("Hotline", {}, "dimension"),
        ("hotline", {"window": "2h"}, "window"),
        ("hotline", {"window": ""}, "window"),
        ("hotline", {"format": "xml"}, "format"),
        ("hotline", {"from_": "soon"}, "from"),
        ("hotline", {"to": "later"}, "to"),
        ("hotline", {"from_": "2000", "to": "1000"}, "from,to"),
        ("hotline", {"limit": "5"}, "limit"),
    ],
)
def test_every_bad_parameter_is_named(
    dimension: str, query: dict[str, str], parameter: str
) -> None:
    error = refused(dimension, **query)
    assert error.parameter == parameter
    assert error.reason


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(BadRequest, match="more than once"):
        parse_metrics_query("all", None, [("window", "1h"), ("window", "1d")], NOW)


def test_the_range_holds_at_most_max_windows_windows() -> None:
    week_of_minutes = MAX_WINDOWS * window_span_ms("1m")
    assert metrics(window="1m", from_="0", to=str(week_of_minutes)).end_ms == week_of_minutes
    error = refused(window="1m", from_="0", to=str(week_of_minutes + 1))
    assert error.parameter == "from,to"
    assert "shorter range or a longer window" in error.reason
    assert metrics(window="1d", from_="0", to=str(MAX_WINDOWS * 86_400_000)).start_ms == 0


def test_window_spans() -> None:
    assert [window_span_ms(w) for w in ("1m", "15m", "1h", "1d")] == [
        60_000,
        900_000,
        3_600_000,
        86_400_000,
    ]
    with pytest.raises(ValueError, match="not a window"):
        window_span_ms("0m")


def test_live_filters() -> None:
    assert parse_live_query([]) == LiveQuery()
    assert parse_live_query([("hotline", "1900"), ("agent", "101")]) == LiveQuery("1900", "101")
    for pairs in ([("hotline", "")], [("queue", "1")], [("agent", "1"), ("agent", "2")]):
        with pytest.raises(BadRequest):
            parse_live_query(pairs)
