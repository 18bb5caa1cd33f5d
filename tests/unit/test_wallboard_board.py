"""The wallboard's board, pure: what it shows of the calls in progress and the windows held
(the current hour and day on the call centre's clock, the last hour's minutes), the patches
between two boards, the history a reconnecting client resumes from, and the metrics view that
keeps each window's highest revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callstream.processors.board import (
    FIGURES,
    BoardHistory,
    build_board,
    diff,
    masked,
    patched,
)
from callstream.processors.board_hub import CLOCK_MARGIN_MS, metrics_since_ms
from callstream.processors.board_windows import BoardWindows, kept_key
from callstream.processors.callmetrics.windows import MetricSettings
from callstream.schemas.calls import LiveCall
from callstream.schemas.metrics import WindowMetrics

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SETTINGS = MetricSettings()


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp() * 1000)


NOW = ms("2025-12-01T10:30:15")
HOUR = ms("2025-12-01T10:00:00")
DAY = ms("2025-12-01T00:00:00")


def window(
    dimension: str, value: str, size: str, start: int, revision: int = 1, **figures: Any
) -> WindowMetrics:
    ends = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
    return WindowMetrics(
        dimension=dimension,  # type: ignore[arg-type]
        value=value,
        window=size,  # type: ignore[arg-type]
        zone="Asia/Ho_Chi_Minh",
        window_start_ms=start,
        window_end_ms=start + ends[size],
        revision=revision,
        updated_at_ms=NOW,
        **figures,
    )


def live(call_id: str, phase: str = "ringing", **fields: object) -> LiveCall:
    return msgspec.convert(
        {"call_id": call_id, "phase": phase, "updated_at_ms": NOW - 1000, **fields}, LiveCall
    )


def test_the_tiles_hold_the_current_hour_and_day_and_the_calls_now() -> None:
    windows = [
        window("hotline", "1900", "1h", HOUR, offered=4, answered=3, answer_rate=0.75),
        window("hotline", "1900", "1h", HOUR - 3_600_000, offered=9),  # the hour before
        window("hotline", "1900", "1d", DAY, offered=13, answered=10),
        window("agent", "101", "1d", DAY, offered=2, label="Phan Thu Dũng"),
        window("all", "all", "1d", DAY, offered=13),
        window("agent", "102", "1d", DAY - 86_400_000, offered=5),  # yesterday
    ]
    calls = [
        live("a", hotline="1900", agent_extension="101", ringing_at_ms=NOW - 5000),
        live("b", "answered", hotline="1900", customer_number="0912345678"),
        live("c", hotline="1800"),
    ]
    board = build_board(calls, windows, NOW, SETTINGS)
    tiles = board["tiles"]
    assert set(tiles) == {"all:all", "hotline:1900", "hotline:1800", "agent:101"}
    hotline = tiles["hotline:1900"]
    assert hotline["hour"]["offered"] == 4
    assert hotline["hour"]["answer_rate"] == 0.75
    assert hotline["day"]["offered"] == 13
    assert set(hotline["hour"]) == set(FIGURES)
    assert (hotline["ringing"], hotline["talking"]) == (1, 1)
    assert tiles["hotline:1800"]["hour"] is None  # known only from a call in progress
    assert tiles["agent:101"]["label"] == "Phan Thu Dũng"
    assert tiles["agent:101"]["hour"] is None
    assert (tiles["all:all"]["ringing"], tiles["all:all"]["talking"]) == (2, 1)
    assert board["meta"]["hour"] == [HOUR, HOUR + 3_600_000]
    assert board["meta"]["day"] == [DAY, DAY + 86_400_000]
    assert board["calls"]["b"]["customer"] == "0912•••678"
    assert board["calls"]["a"]["ringing_at_ms"] == NOW - 5000


def test_the_chart_holds_the_last_sixty_minutes_of_the_whole_centre() -> None:
    minute = ms("2025-12-01T10:30:00")
    first = minute - 59 * 60_000
    windows = [
        window("all", "all", "1m", first, offered=3, answered=2),
        window("all", "all", "1m", minute, offered=1, answered=1),
        window("all", "all", "1m", first - 60_000, offered=7),  # an hour ago: gone
        window("hotline", "1900", "1m", minute, offered=1),  # not the centre's
    ]
    board = build_board([], windows, NOW, SETTINGS)
    assert board["chart"] == {
        str(first): {"offered": 3, "answered": 2},
        str(minute): {"offered": 1, "answered": 1},
    }
    assert board["meta"]["chart_from_ms"] == first


def test_a_window_size_the_worker_does_not_count_is_left_out() -> None:
    hours_only = MetricSettings(windows=("15m", "1h"))
    board = build_board([], [window("all", "all", "1h", HOUR, offered=1)], NOW, hours_only)
    assert board["meta"]["day"] is None
    assert board["meta"]["chart_from_ms"] is None
    assert board["tiles"]["all:all"]["hour"]["offered"] == 1


@pytest.mark.parametrize(
    ("number", "shown"),
    [("0912345678", "0912•••678"), ("84912345678", "8491•••678"), ("1234567", "••••567"),
     ("12", "12"), (None, None)],
)  # fmt: skip
def test_a_customers_number_is_masked(number: str | None, shown: str | None) -> None:
    assert masked(number) == shown


boards = st.fixed_dictionaries(
    {
        section: st.dictionaries(
            st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3)), max_size=5
        )
        for section in ("meta", "calls", "tiles", "chart")
    }
)


@given(boards, boards)
def test_a_patch_turns_the_old_board_into_the_new(old: Any, new: Any) -> None:
    patch = diff(old, new)
    assert patched(old, patch) == new
    assert (patch == {}) == (old == new)


def test_a_reconnecting_client_gets_the_patches_it_missed_or_a_snapshot() -> None:
    history = BoardHistory("e1", keep=2)
    assert history.since("e1-0") == []  # nothing happened yet
    first = history.advance({"meta": {"a": 1}})
    assert first is not None
    assert first[0] == "e1-1"
    assert history.advance({"meta": {"a": 1}}) is None  # no change, no event
    history.advance({"meta": {"a": 2}})
    history.advance({"meta": {"a": 3}})
    assert history.event_id() == "e1-3"
    assert [event_id for event_id, _ in history.since("e1-1") or []] == ["e1-2", "e1-3"]
    assert history.since("e1-3") == []
    assert history.since("e1-0") is None  # its patch 1 is no longer kept
    assert history.since("e0-2") is None  # another process's numbering
    assert history.since("e1-9") is None  # ahead of this history
    assert history.since("garbage") is None
    assert history.since(None) is None
    board: dict[str, dict[str, Any]] = {"meta": {"a": 1}}
    for _, patch in history.since("e1-1") or []:
        board = patched(board, patch)
    assert board["meta"] == history.board["meta"]


def test_the_metrics_view_keeps_the_highest_revision_of_the_windows_a_board_shows() -> None:
    view = BoardWindows()
    newer = window("hotline", "19:00", "1h", HOUR, revision=5, offered=5)
    older = window("hotline", "19:00", "1h", HOUR, revision=4, offered=4)
    key = newer.key().encode()
    assert view.apply(key, msgspec.json.encode(newer))
    assert view.apply(key, msgspec.json.encode(older))  # replayed: the newer stays
    assert view.windows() == [newer]
    resent = window("hotline", "19:00", "1h", HOUR, revision=5, offered=6)
    assert view.apply(key, msgspec.json.encode(resent))  # after a worker kill: the later wins
    assert view.windows() == [resent]
    fifteen = window("all", "all", "1m", HOUR).key().replace(":1m:", ":15m:").encode()
    assert view.apply(fifteen, b"not read: no board shows it")
    direction = window("direction", "inbound", "1h", HOUR)
    assert view.apply(direction.key().encode(), msgspec.json.encode(direction))
    assert len(view) == 1
    assert not view.apply(key, b"{not json")
    assert not view.apply(b"no-window-here", b"{}")
    assert not view.apply(None, b"{}")
    view.prune(newer.window_end_ms)
    assert len(view) == 0


@pytest.mark.parametrize(
    ("key", "kept"),
    [(b"hotline:1900:1h:1", True), (b"agent:a:b:c:1d:1", True), (b"all:all:1m:1", True),
     (b"hotline:1900:1m:1", False), (b"direction:inbound:1h:1", False),
     (b"hotline:1900:1h:x", None), (b"nothing", None), (b"\xff:1h:1", None)],
)  # fmt: skip
def test_a_key_names_a_kept_window_or_none(key: bytes, kept: bool | None) -> None:
    assert kept_key(key) is kept


def test_the_metrics_are_read_from_the_start_of_the_day_or_the_chart() -> None:
    assert metrics_since_ms(NOW, SETTINGS) == DAY - CLOCK_MARGIN_MS
    just_after_midnight = ms("2025-12-01T00:10:00")
    assert metrics_since_ms(just_after_midnight, SETTINGS) == (
        just_after_midnight - 3_600_000 - CLOCK_MARGIN_MS
    )
    hours_only = MetricSettings(windows=("1h",))
    assert metrics_since_ms(NOW, hours_only) == NOW - 3_600_000 - CLOCK_MARGIN_MS
