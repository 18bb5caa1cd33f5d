"""bench/pipeline.py's ladder of offered rates finds the highest rate the pipeline keeps up
with, also when that is below where the ladder starts: a slow worker is a missed target
reported with its figure, not a crash without one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bench.pipeline import LADDER_FACTOR, LADDER_FROM, Step, sustained_rate

INGEST_ONLY = 1000.0


def pipeline_keeping_up_to(limit: float) -> tuple[list[float], Callable[[float], Awaitable[Step]]]:
    offered: list[float] = []

    async def step(rate: float) -> Step:
        offered.append(rate)
        kept = rate <= limit
        return Step(rate, rate if kept else rate * 0.5, 0 if kept else int(rate * 5), [])

    return offered, step


@pytest.mark.parametrize("limit", [INGEST_ONLY * 0.45, INGEST_ONLY * 0.9, INGEST_ONLY * 5])
async def test_the_ladder_climbs_until_the_worker_falls_behind(limit: float) -> None:
    offered, step = pipeline_keeping_up_to(limit)
    sustained, ladder = await sustained_rate(step, INGEST_ONLY)
    assert sustained == max(rate for rate in offered if rate <= limit)
    assert offered[0] == INGEST_ONLY * LADDER_FROM
    assert sustained * LADDER_FACTOR > min(limit, INGEST_ONLY * 1.5)
    assert len(ladder) == len(offered)


async def test_a_worker_slower_than_the_ladders_start_is_measured_not_a_crash() -> None:
    limit = INGEST_ONLY * 0.12
    _, step = pipeline_keeping_up_to(limit)
    sustained, ladder = await sustained_rate(step, INGEST_ONLY)
    assert 0 < sustained <= limit < sustained * LADDER_FACTOR
    assert [s.kept_up() for s in ladder][-1]


async def test_a_pipeline_keeping_up_with_nothing_raises() -> None:
    _, step = pipeline_keeping_up_to(0.0)
    with pytest.raises(RuntimeError, match="kept up with no rate"):
        await sustained_rate(step, INGEST_ONLY)


async def test_a_rate_that_falls_behind_once_is_offered_again_before_the_ladder_stops() -> None:
    # One hiccup of a shared machine must not end the climb at a rate the pipeline sustains.
    limit = INGEST_ONLY * 0.9
    offered, keeping_up = pipeline_keeping_up_to(limit)
    hiccup = INGEST_ONLY * LADDER_FROM * LADDER_FACTOR

    async def step(rate: float) -> Step:
        if rate == hiccup and offered.count(rate) == 0:
            offered.append(rate)
            return Step(rate, rate, int(rate * 5), [])  # fell behind, this once
        return await keeping_up(rate)

    sustained, _ = await sustained_rate(step, INGEST_ONLY)
    assert offered.count(hiccup) == 2
    assert sustained == max(rate for rate in offered if rate <= limit)
    assert sustained > hiccup
