"""Windows on the call centre's clock, their keys, and what one call contributes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfoNotFoundError

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callstream.processors.callmetrics.combine import ShareUpdate, merged, window_metrics
from callstream.processors.callmetrics.contribution import (
    call_figures,
    changes,
    contribution,
    dimension_values,
)
from callstream.processors.callmetrics.partials import changed
from callstream.processors.callmetrics.windows import (
    WINDOW_MS,
    MetricSettings,
    WindowKey,
    is_late,
    share_key,
    split_share_key,
    table_prefix,
    window_bounds,
)
from callstream.processors.settings import WorkerSettings, metric_settings
from callstream.schemas.calls import CompletedCall
from callstream.schemas.omicall import EpochMillis, EpochSeconds
from callstream.settings import SettingsError
from tests.metrics_truth import window_start

ZONES = ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe", "UTC"]
instants = st.integers(1_600_000_000_000, 1_900_000_000_000)
EPOCH_MILLIS_MAX = EpochMillis.__metadata__[0].le  # type: ignore[attr-defined]
EPOCH_SECONDS_MAX = EpochSeconds.__metadata__[0].le  # type: ignore[attr-defined]


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_a_day_in_ho_chi_minh_starts_at_its_midnight() -> None:
    tz = MetricSettings().tz
    assert window_bounds(ms("2026-11-28T10:00:00+00:00"), "1d", tz) == (
        ms("2026-11-27T17:00:00+00:00"),
        ms("2026-11-28T17:00:00+00:00"),
    )
    assert window_bounds(ms("2026-11-28T16:59:59.999+00:00"), "1h", tz) == (
        ms("2026-11-28T16:00:00+00:00"),
        ms("2026-11-28T17:00:00+00:00"),
    )


@pytest.mark.parametrize(
    ("day", "hours"), [("2026-03-29T12:00:00+02:00", 23), ("2026-10-25T12:00:00+01:00", 25)]
)
def test_days_that_change_the_clock_are_shorter_or_longer(day: str, hours: int) -> None:
    start, end = window_bounds(ms(day), "1d", MetricSettings(zone="Europe/Berlin").tz)
    assert end - start == hours * 3_600_000


@given(instants, st.sampled_from(ZONES), st.sampled_from(list(WINDOW_MS)))
def test_windows_hold_their_instant_tile_time_and_match_the_wall_clock(
    at_ms: int, zone: str, window: str
) -> None:
    tz = MetricSettings(zone=zone).tz
    start, end = window_bounds(at_ms, window, tz)  # type: ignore[arg-type]
    assert start <= at_ms < end
    assert window_bounds(start, window, tz) == (start, end)  # type: ignore[arg-type]
    assert window_bounds(end, window, tz)[0] == end  # type: ignore[arg-type]
    assert start == window_start(at_ms, window, zone)


@given(instants, st.sampled_from(ZONES))
def test_minute_windows_are_the_same_in_every_zone(at_ms: int, zone: str) -> None:
    utc = MetricSettings(zone="UTC").tz
    assert window_bounds(at_ms, "1m", MetricSettings(zone=zone).tz) == window_bounds(
        at_ms, "1m", utc
    )


def test_settings_refuse_unknown_windows_and_zones() -> None:
    with pytest.raises(ValueError, match="windows"):
        MetricSettings(windows=("2m",))  # type: ignore[arg-type]
    with pytest.raises(ZoneInfoNotFoundError):
        MetricSettings(zone="Mars/Olympus")


def test_a_window_is_late_after_its_grace() -> None:
    settings = MetricSettings(zone="UTC", grace_ms=60_000, day_grace_ms=3_600_000)
    minute = WindowKey("all", "all", "1m", 0)
    day = WindowKey("all", "all", "1d", 0)
    assert not is_late(minute, 120_000, settings)
    assert is_late(minute, 120_001, settings)
    assert not is_late(day, 86_400_000 + 3_600_000, settings)
    assert is_late(day, 86_400_000 + 3_600_001, settings)


def test_table_keys_round_trip_and_sort_by_dimension_value_then_start() -> None:
    keys = [
        WindowKey("hotline", "1900", "1h", 3_600_000),
        WindowKey("hotline", "1900", "1h", 36_000_000),
        WindowKey("hotline", "19001", "1h", 0),
    ]
    encoded = [key.table_key() for key in keys]
    assert sorted(encoded) == encoded
    assert [WindowKey.from_table_key(raw) for raw in encoded] == keys
    assert all(raw.startswith(table_prefix("hotline", "1900")) for raw in encoded[:2])
    assert not encoded[2].startswith(table_prefix("hotline", "1900"))
    assert keys[0].topic_key() == "hotline:1900:1h:3600000"


CALL = CompletedCall(
    call_id="c",
    revision=1,
    source="both",
    outcome="answered",
    direction="inbound",
    hotline="1900",
    agent_extension="100",
    agent_name="Lan",
    started_at_ms=ms("2026-11-28T10:00:30+00:00"),
    ring_seconds=12.5,
    talk_seconds=5.0,
    billed_seconds=6.0,
    price=55.002,
)


def test_a_call_counts_once_in_each_window_of_each_dimension_value() -> None:
    settings = MetricSettings()
    keys = contribution(CALL, settings)
    assert len(keys) == 4 * 4
    assert {(k.dimension, k.value) for k in keys} == {
        ("all", "all"),
        ("hotline", "1900"),
        ("agent", "100"),
        ("direction", "inbound"),
    }
    figures = call_figures(CALL, settings)
    assert (figures.answered, figures.within_sla, figures.ring_ms, figures.talk_ms) == (
        1,
        1,
        12_500,
        5_000,
    )
    assert (figures.billed_ms, figures.price_units) == (6_000, 55_002_000)
    unknown = CompletedCall(call_id="d", revision=1, source="live", outcome="missed")
    assert contribution(unknown, settings) == {}  # no start: no window


def test_a_correction_moves_the_call_between_keys_and_changes_only_what_moved() -> None:
    settings = MetricSettings(windows=("1h",))
    moved = CompletedCall(**{**_fields(CALL), "hotline": "1800", "revision": 2})
    found = changes(CALL, moved, settings)
    moves = sorted((key.dimension, key.value, old is None, new is None) for key, old, new in found)
    assert moves == [("hotline", "1800", True, False), ("hotline", "1900", False, True)]
    assert changes(CALL, CALL, settings) == []


def _fields(call: CompletedCall) -> dict[str, object]:
    return {name: getattr(call, name) for name in call.__struct_fields__}


def test_the_hour_start_is_utc_aligned_in_a_whole_hour_zone() -> None:
    at = datetime(2026, 11, 28, 10, 42, tzinfo=UTC)
    start, _ = window_bounds(int(at.timestamp() * 1000), "1h", MetricSettings().tz)
    assert start == int(datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp() * 1000)


def test_the_worker_reads_its_metric_settings_and_refuses_bad_ones() -> None:
    read = metric_settings(
        {
            "CALLSTREAM_METRICS_WINDOWS": "1m, 1d",
            "CALLSTREAM_TIME_ZONE": "Europe/Berlin",
            "CALLSTREAM_SERVICE_LEVEL_S": "15",
            "CALLSTREAM_METRICS_GRACE_S": "60",
            "CALLSTREAM_METRICS_DAY_GRACE_S": "0",
        }
    )
    assert read == MetricSettings(
        windows=("1m", "1d"),
        zone="Europe/Berlin",
        service_level_s=15,
        grace_ms=60_000,
        day_grace_ms=0,
    )
    assert metric_settings({}) == MetricSettings()
    for name, value in [
        ("CALLSTREAM_METRICS_WINDOWS", "1m,2m"),
        ("CALLSTREAM_TIME_ZONE", "Mars/Olympus"),
        ("CALLSTREAM_TIME_ZONE", "../etc/passwd"),
        ("CALLSTREAM_METRICS_GRACE_S", "-1"),
        ("CALLSTREAM_SERVICE_LEVEL_S", "nan"),
    ]:
        with pytest.raises(SettingsError, match=name):
            metric_settings({name: value})


def test_a_value_holding_nul_or_colons_round_trips_through_its_table_key() -> None:
    key = WindowKey("hotline", "a\x00b:c", "15m", 900_000)
    assert WindowKey.from_table_key(key.table_key()) == key
    assert split_share_key(share_key(key, 11)) == (key, 11)


@pytest.mark.parametrize("zone", ZONES)
def test_a_call_started_at_the_last_instant_a_webhook_may_give_has_windows(zone: str) -> None:
    """The schema takes times up to the end of year 9999 (schemas/omicall.py): a webhook's call
    started then must not raise in the fold (an agent's exception stops the worker, and the
    record, never acknowledged, stops it again after every restart)."""
    settings = MetricSettings(windows=tuple(WINDOW_MS), zone=zone)  # type: ignore[arg-type]
    for at_ms in (EPOCH_MILLIS_MAX, EPOCH_SECONDS_MAX * 1000, EPOCH_MILLIS_MAX - 36 * 3_600_000):
        last = CompletedCall(**{**_fields(CALL), "started_at_ms": at_ms})
        keys = contribution(last, settings)
        assert len(keys) == 4 * len(WINDOW_MS)
        for key in keys:
            assert window_bounds(key.start_ms, key.window, settings.tz)[0] == key.start_ms
            assert key.start_ms <= at_ms
            assert window_bounds(at_ms, key.window, settings.tz)[1] > at_ms
            assert not is_late(key, ms("2030-01-01T00:00:00+00:00"), settings)


def test_a_call_retention_shorter_than_a_window_and_its_grace_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert MetricSettings().open_for_ms() == 25 * 3_600_000 + 86_400_000
    WorkerSettings.from_env({"CALLSTREAM_RETENTION_S": str(3 * 86_400)})
    WorkerSettings.from_env({})
    assert not caplog.records
    WorkerSettings.from_env({"CALLSTREAM_RETENTION_S": "3600"})
    assert "would count it twice" in caplog.text


def test_agent_names_from_webhooks_cannot_grow_a_share_past_a_record() -> None:
    """Each CDR may name its agent anew, at any length its body allows: a share keeps its
    first few names, each cut short, and its label is still the agent's usual name."""
    settings = MetricSettings(windows=("1d",))
    (key,) = [k for k in contribution(CALL, settings) if k.dimension == "agent"]
    share = None
    for index in range(3):
        call = msgspec.structs.replace(CALL, call_id=f"usual{index}")
        share = changed(share, None, contribution(call, settings)[key], names=True)
    for index in range(40):
        call = msgspec.structs.replace(CALL, call_id=f"c{index}", agent_name=f"{index}" * 30_000)
        share = changed(share, None, contribution(call, settings)[key], names=True)
    assert share is not None
    assert len(msgspec.json.encode(share)) < 4096
    window = merged(None, ShareUpdate(key.table_key(), 0, share))
    assert window is not None
    assert window_metrics(key, window, settings, 1).label == "Lan"


def test_a_window_named_twice_counts_a_call_once() -> None:
    """CALLSTREAM_METRICS_WINDOWS may name a window twice: a call still changes each of its
    windows once, as its contribution (one figure a key) says."""
    settings = metric_settings({"CALLSTREAM_METRICS_WINDOWS": "1h,1h"})
    moved = CompletedCall(**{**_fields(CALL), "ring_seconds": 3.0, "revision": 2})
    for before, after in ((None, CALL), (CALL, moved), (CALL, None)):
        found = [key for key, _, _ in changes(before, after, settings)]
        assert len(found) == len(set(found)) == len(dimension_values(CALL))


@pytest.mark.parametrize(
    ("at", "window", "start", "end"),
    [
        # Newfoundland turns 02:00 NDT back to 01:00 NST: the repeated minute is a minute of its
        # own (this instant once got a window of an hour and a minute, from hypothesis)
        (
            "2029-11-04T04:30:00+00:00",
            "1m",
            "2029-11-04T04:30:00+00:00",
            "2029-11-04T04:31:00+00:00",
        ),
        # ... and the 01:00 hour, read on as the clock turns back to it, runs two hours
        (
            "2029-11-04T04:30:00+00:00",
            "1h",
            "2029-11-04T03:30:00+00:00",
            "2029-11-04T05:30:00+00:00",
        ),
        # Lord Howe moves its clock 30 minutes on: the hour it enters holds 30 minutes
        (
            "2029-10-06T15:45:00+00:00",
            "1h",
            "2029-10-06T15:30:00+00:00",
            "2029-10-06T16:00:00+00:00",
        ),
    ],
)
def test_clock_changes_make_windows_of_their_own_length_that_never_overlap(
    at: str, window: str, start: str, end: str
) -> None:
    zone = "America/St_Johns" if at.startswith("2029-11") else "Australia/Lord_Howe"
    tz = MetricSettings(zone=zone).tz
    assert window_bounds(ms(at), window, tz) == (ms(start), ms(end))  # type: ignore[arg-type]
    assert window_start(ms(at), window, zone) == ms(start)


@pytest.mark.parametrize(
    ("zone", "around"),
    [
        ("Europe/Berlin", "2026-10-25T01:00:00+00:00"),
        ("America/St_Johns", "2029-11-04T04:30:00+00:00"),
        ("Australia/Lord_Howe", "2029-10-06T15:30:00+00:00"),
        ("Asia/Ho_Chi_Minh", "2026-11-28T00:00:00+00:00"),
    ],
)
def test_instants_read_in_order_across_a_clock_change_each_get_their_own_window(
    zone: str, around: str
) -> None:
    # window_bounds remembers the last window of each size: calls come mostly in time order
    tz = MetricSettings(zone=zone).tz
    for at in range(ms(around) - 86_400_000, ms(around) + 86_400_000, 433_000):
        for window in WINDOW_MS:
            start, end = window_bounds(at, window, tz)  # type: ignore[arg-type]
            assert start == window_start(at, window, zone) <= at < end
            assert window_start(end - 1, window, zone) == start
            assert window_start(end, window, zone) == end
            assert window_bounds(end - 1, window, tz) == (start, end)  # type: ignore[arg-type]
            assert window_bounds(end, window, tz)[0] == end  # type: ignore[arg-type]


def test_a_window_takes_a_partitions_share_only_at_a_newer_version() -> None:
    """A share sent again (a worker that recovered its partitions sends them all) or an older
    one (overtaken) changes nothing; shares go only once their changelog is delivered, so one
    version has one content (docs/metrics.md)."""
    settings = MetricSettings(windows=("1h",))
    (key,) = [k for k in contribution(CALL, settings) if k.dimension == "all"]
    figures = contribution(CALL, settings)[key]
    one = changed(None, None, figures)  # version 1, one call
    two = changed(one, None, figures)  # version 2, two calls
    window = merged(None, ShareUpdate(key.table_key(), 4, one))
    assert window is not None
    newer = merged(window, ShareUpdate(key.table_key(), 4, two))
    assert newer is not None
    assert window_metrics(key, newer, settings, 1).offered == 2
    assert merged(newer, ShareUpdate(key.table_key(), 4, two)) is None  # sent again
    assert merged(newer, ShareUpdate(key.table_key(), 4, one)) is None  # overtaken
    other = merged(newer, ShareUpdate(key.table_key(), 5, one))  # another partition's
    assert other is not None
    assert window_metrics(key, other, settings, 1).offered == 3
