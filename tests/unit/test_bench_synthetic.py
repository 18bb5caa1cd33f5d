"""bench/processors.py waits for the windows bench/synthetic_calls.py expects: they must be
what the worker's own fold and metrics count, in whichever order it reads its two topics, and
inside their grace while the bench runs."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.synthetic_calls import call_records, expected_offered, synthetic_calls
from callstream.processors.callmetrics.contribution import changes
from callstream.processors.callmetrics.windows import MetricSettings, WindowKey, is_late
from callstream.processors.step import fold_record
from callstream.schemas.topics import CALL_EVENTS

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SETTINGS = MetricSettings()


def folded_offered(records: list[tuple[str, bytes, bytes]]) -> Counter[str]:
    """Each window's calls as the worker counts them: every change of a completed record
    moves its windows' counts by (new - old)."""
    table: dict[str, bytes] = {}
    offered: Counter[str] = Counter()
    for _, _, value in records:
        step = fold_record(table.get, value, NOW_MS)
        if step.call_id is not None and step.stored is not None:
            table[step.call_id] = step.stored
        for key, old, new in changes(step.completed_before, step.completed_after, SETTINGS):
            offered[key.topic_key()] += (new is not None) - (old is not None)
    return +offered


@pytest.mark.parametrize("shape", ["full", "cdr"])
@pytest.mark.parametrize("cdrs_first", [False, True])
def test_the_expected_windows_are_the_folds(shape: str, cdrs_first: bool) -> None:
    calls = synthetic_calls(300, NOW_MS)
    records = call_records(calls, shape)
    if cdrs_first:  # the worker may read the CDR topic ahead of the live events
        records.sort(key=lambda record: record[0] == CALL_EVENTS)
    assert folded_offered(records) == expected_offered(calls, SETTINGS)


def test_the_calls_vary_and_sit_inside_their_windows_grace() -> None:
    calls = synthetic_calls(2000, NOW_MS)
    expected = expected_offered(calls, SETTINGS)
    assert len({call.hotline for call in calls}) >= 4
    assert len({call.agent for call in calls}) >= 20
    assert {call.direction for call in calls} == {"inbound", "outbound", "local"}
    assert 0 < sum(call.answered for call in calls) < len(calls)
    assert len([key for key in expected if key.startswith("all:all:1m:")]) >= 40
    assert max(call.start_s + call.ring_s + call.talk_s for call in calls) * 1000 <= NOW_MS
    # Ten minutes into the run no window is past its grace yet.
    for topic_key in expected:
        dimension, value, window, start = topic_key.split(":")
        key = WindowKey(dimension, value, window, int(start))  # type: ignore[arg-type]
        assert not is_late(key, NOW_MS + 10 * 60_000, SETTINGS)
