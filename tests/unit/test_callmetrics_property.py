"""The metrics fold against a brute force: generated calls folded by the real call-state fold,
in any order, with duplicates, corrections and timer completions, their window shares kept
per partition and delivered to the windows in any order with duplicates, give exactly the
figures tests/metrics_truth.py computes in one batch from the final completed calls."""

from __future__ import annotations

from typing import Any
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from callstream.processors.callmetrics import partials
from callstream.processors.callmetrics.combine import (
    ShareUpdate,
    Window,
    for_window,
    merged,
    window_metrics,
)
from callstream.processors.callmetrics.contribution import CallFigures, changes, contribution
from callstream.processors.callmetrics.partials import (
    Partial,
    changed,
    copied,
    rebuilt,
    shares_after,
)
from callstream.processors.callmetrics.windows import MetricSettings, WindowKey
from callstream.processors.callstate import apply, completed_call, expire
from callstream.schemas.calls import CallState, CompletedCall
from tests.metrics_truth import expected_windows
from tests.unit.test_callstate import T0
from tests.unit.test_callstate_property import HOUR, MIN, Delivery, Tick, calls

PARTITIONS = 2
ZONES = ["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/St_Johns"]
_IGNORED = {"revision", "updated_at_ms", "dimension", "value", "window", "zone"}
_IGNORED |= {"window_start_ms", "window_end_ms", "service_level_threshold_s"}


@st.composite
def streams(draw: st.DrawFn) -> list[Any]:
    """The events of up to 6 calls (some sharing a window, a partition or both), shuffled,
    with duplicates."""
    ids = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True))
    events = [item for call_id in ids for item in draw(calls(call_id))]
    duplicates = draw(st.lists(st.sampled_from(events), max_size=5))
    return draw(st.permutations(events + duplicates))


def completed(state: CallState | None) -> CompletedCall | None:
    return completed_call(state) if state is not None and state.status == "completed" else None


def partition_of(call_id: str) -> int:
    return sum(call_id.encode()) % PARTITIONS


class Worker:
    """Plays the worker's two agents: the call fold with its window shares, per partition,
    and the windows, fed share updates in whatever order the test delivers them."""

    def __init__(self, metric_settings: MetricSettings) -> None:
        self.settings = metric_settings
        self.states: dict[str, CallState] = {}
        self.shares: dict[tuple[int, WindowKey], Partial] = {}
        self.sent: list[bytes] = []

    def fold(self, deliveries: list[Delivery]) -> None:
        now = T0
        for item in deliveries:
            if isinstance(item, Tick):
                now += item.advance_ms
                for call_id in sorted(self.states):
                    self.change(call_id, expire(self.states[call_id], now)[0], now)
            else:
                now += 1
                self.change(item.call_id, apply(self.states.get(item.call_id), item, now)[0], now)

    def change(self, call_id: str, new: CallState, now: int) -> None:
        before = completed(self.states.get(call_id))
        self.states[call_id] = new
        partition = partition_of(call_id)
        found = changes(before, completed(new), self.settings)
        updated, late = shares_after(
            found, lambda key: copied(self.shares.get((partition, key))), now, self.settings
        )
        assert late == []
        for key, changed_share in updated:
            share = changed_share
            if not share.max_known:
                share = rebuilt(share, self.ring_times(partition, key))
            self.shares[(partition, key)] = share
            update = ShareUpdate(key.table_key(), partition, for_window(share))
            self.sent.append(msgspec.json.encode(update))

    def ring_times(self, partition: int, key: WindowKey) -> list[int]:
        """What the worker reads when a share lost its largest ring times: its calls'."""
        found = []
        for call_id, state in self.states.items():
            figures = contribution(completed(state), self.settings).get(key)
            if partition_of(call_id) == partition and figures and figures.ring_ms is not None:
                found.append(figures.ring_ms)
        return found


def windows_from(delivered: list[bytes], metric_settings: MetricSettings) -> dict[str, Any]:
    windows: dict[bytes, Window] = {}
    for raw in delivered:
        update = msgspec.json.decode(raw, type=ShareUpdate)
        window = merged(windows.get(update.key), update)
        if window is not None:
            windows[update.key] = window
    found = {}
    for raw_key, window in windows.items():
        key = WindowKey.from_table_key(raw_key)
        figures = msgspec.to_builtins(window_metrics(key, window, metric_settings, 1))
        found[key.topic_key()] = {k: v for k, v in figures.items() if k not in _IGNORED}
    return found


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_metrics_equal_the_brute_force_whatever_the_delivery(
    delivered: list[Any], data: st.DataObject
) -> None:
    ticks = data.draw(st.lists(st.sampled_from([Tick(15 * MIN), Tick(4 * HOUR)]), max_size=3))
    mixed: list[Delivery] = data.draw(st.permutations([*delivered, *ticks]))
    metric_settings = MetricSettings(
        windows=("1m", "15m", "1h", "1d"),
        zone=data.draw(st.sampled_from(ZONES)),
        service_level_s=data.draw(st.sampled_from([0.0, 5.0, 20.0])),
        grace_ms=10**15,
        day_grace_ms=10**15,
    )
    worker = Worker(metric_settings)
    with mock.patch.object(partials, "TOP", data.draw(st.sampled_from([1, 2, 16]))):
        worker.fold(mixed)
    extra = data.draw(st.lists(st.sampled_from(worker.sent), max_size=8)) if worker.sent else []
    got = windows_from(data.draw(st.permutations(worker.sent + extra)), metric_settings)

    finals = [call for call in map(completed, worker.states.values()) if call is not None]
    want = expected_windows(
        finals, list(metric_settings.windows), metric_settings.zone, metric_settings.service_level_s
    )
    emptied = {key for key, figures in got.items() if figures["offered"] == 0}
    assert {key: got[key] for key in got.keys() - emptied} == want
    for key in emptied:  # every call left it: nothing of them stays
        assert all(not value for value in got[key].values()), (key, got[key])


@settings(max_examples=150, deadline=None)
@given(streams(), st.data())
def test_a_flush_sending_each_shares_latest_version_only_gives_the_same_windows(
    delivered: list[Any], data: st.DataObject
) -> None:
    """The worker sends a share once per flush, its latest version: the windows that get only
    some versions of each share, its last among them, are still exact."""
    metric_settings = MetricSettings(
        windows=("1m", "1h"), grace_ms=10**15, day_grace_ms=10**15, service_level_s=20.0
    )
    worker = Worker(metric_settings)
    worker.fold(delivered)
    last: dict[tuple[bytes, int], bytes] = {}
    for raw in worker.sent:
        update = msgspec.json.decode(raw, type=ShareUpdate)
        last[(update.key, update.partition)] = raw
    earlier = [raw for raw in worker.sent if raw not in last.values()]
    kept = data.draw(st.lists(st.sampled_from(earlier), max_size=6)) if earlier else []
    got = windows_from(data.draw(st.permutations([*kept, *last.values()])), metric_settings)

    finals = [call for call in map(completed, worker.states.values()) if call is not None]
    want = expected_windows(finals, ["1m", "1h"], metric_settings.zone, 20.0)
    assert {key: figures for key, figures in got.items() if figures["offered"]} == want


def test_corrections_that_keep_the_ring_times_keep_the_largest_ring_times() -> None:
    """A correction that changes a call's other figures (its CDR's billed seconds after a timer
    completion, a hangup folded after the CDR) but not its ring time left the share's largest
    ring times one shorter whenever the call was the smallest of them: enough of those and the
    maximum was unknown, and the worker decoded every call state it holds to rebuild it."""

    def figures(ring_ms: int, billed_ms: int = 0) -> CallFigures:
        return CallFigures(1, 1, 0, 0, 1, ring_ms, 1_000, billed_ms, 0, 0, 0, None)

    share = None
    for ring_ms in range(1_000, 1_000 + 3 * partials.TOP):
        share = changed(share, None, figures(ring_ms))
    assert share is not None
    top = share.top_ring
    for ring_ms in range(1_000 + 2 * partials.TOP, 1_000 + 3 * partials.TOP):  # the smallest first
        share = changed(share, figures(ring_ms), figures(ring_ms, billed_ms=6_000))
    assert share.top_ring == top
    assert share.max_known


_figures = st.builds(
    CallFigures,
    offered=st.just(1),
    answered=st.integers(0, 1),
    missed=st.integers(0, 1),
    abandoned=st.integers(0, 1),
    within_sla=st.integers(0, 1),
    ring_ms=st.none() | st.integers(0, 30) | st.integers(0, 10**9),
    talk_ms=st.none() | st.integers(0, 10**9),
    billed_ms=st.integers(0, 10**9),
    price_units=st.integers(0, 10**12),
    cdr_missing=st.integers(0, 1),
    live_missing=st.integers(0, 1),
    agent_name=st.none() | st.sampled_from(["An", "Bình", "Chi"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_figures, min_size=1, max_size=40), st.data())
def test_a_call_moved_in_place_sums_as_if_taken_out_and_put_back(
    counted: list[CallFigures], data: st.DataObject
) -> None:
    """``change`` with both figures (partials._move: the sums out and back in, a ring time,
    talk time or name moved only when it differs): every sum, count and name equals the
    share's taken out and put back, and its maximum stays exact."""
    share = None
    for figures in counted:
        share = changed(share, None, figures, names=True)
    assert share is not None
    index = data.draw(st.integers(0, len(counted) - 1))
    new = data.draw(_figures)
    moved = changed(share, counted[index], new, names=True)
    rebuilt_share = changed(changed(share, counted[index], None, names=True), None, new, names=True)
    fields = [name for name in Partial.__struct_fields__ if name not in ("top_ring", "version")]
    assert [getattr(moved, name) for name in fields] == [
        getattr(rebuilt_share, name) for name in fields
    ]
    ring_times = [f.ring_ms for f in [*counted[:index], new, *counted[index + 1 :]]]
    known = [ring_ms for ring_ms in ring_times if ring_ms is not None]
    if moved.max_known:
        assert moved.max_ring_ms == (max(known) if known else None)
    assert share.version == len(counted)  # the share changed was copied, not changed


_completed = st.builds(
    CompletedCall,
    call_id=st.just("c"),
    revision=st.just(1),
    source=st.just("cdr"),
    outcome=st.sampled_from(["answered", "missed", "abandoned"]),
    direction=st.none() | st.sampled_from(["inbound", "outbound"]),
    hotline=st.none() | st.sampled_from(["1900", "1800"]),
    agent_extension=st.none() | st.sampled_from(["101", "102"]),
    started_at_ms=st.none() | st.sampled_from([T0, T0 + 59_000, T0 + HOUR]),
    ring_seconds=st.none() | st.sampled_from([0.0, 4.0]),
    talk_seconds=st.none() | st.sampled_from([0.0, 30.0]),
    live_missing=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(st.none() | _completed, st.none() | _completed)
def test_changes_are_each_windows_old_and_new_figures(
    before: CompletedCall | None, after: CompletedCall | None
) -> None:
    """``changes`` (with its fast paths) against its definition over the two contributions."""
    metric_settings = MetricSettings()
    old, new = contribution(before, metric_settings), contribution(after, metric_settings)
    expected = sorted(
        (key, old.get(key), new.get(key))
        for key in old.keys() | new.keys()
        if old.get(key) != new.get(key)
    )
    assert sorted(changes(before, after, metric_settings)) == expected
