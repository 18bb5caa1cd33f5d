"""The worker's /metrics: every metric with every label it writes passes `promtool check
metrics`; consumer lag and table rows are computed when scraped."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from faust.types import TP
from prometheus_client.parser import text_string_to_metric_families

from callstream.processors.ops_metrics import Scrape, WorkerMetrics, consumer_lag
from callstream.processors.step import Outcome
from tests.promtool import assert_promtool_passes, promtool

EVENTS, CHANGELOG = "p.omicall.call-events", "w-call-state-changelog"


def samples(exposition: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
    }


class Consumer:
    """faust's consumer as the lag reads it: assignment, highwater, position."""

    def __init__(self, highwaters: dict[TP, int | None], positions: dict[TP, int]) -> None:
        self.highwaters = highwaters
        self.positions = positions

    def assignment(self) -> set[TP]:
        return set(self.highwaters)

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters[tp]

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


class StoreUsage:
    def usage(self) -> dict[str, int]:
        return {"total": 8 * 1024 * 1024, "memtables": 3 * 1024 * 1024}


class Rows:
    rows = 7


async def test_every_metric_with_every_label_passes_promtool() -> None:
    promtool()
    metrics = WorkerMetrics.create()
    for outcome in get_args(Outcome):
        metrics.observe_folded(EVENTS, outcome)
    metrics.set_lag({(EVENTS, 0): 3})
    metrics.set_table_rows("call-state", 12)
    metrics.window_emitted("1m", 4)
    metrics.late_dropped("1d")
    metrics.observe_flush(0.031)
    metrics.observe_completed(True)
    metrics.observe_completed(False)
    exposition = await Scrape(
        metrics, {}, lambda: None, topics=(), ready=lambda: False, store_memory=StoreUsage()
    )()
    found = samples(exposition)
    for name, labels in [
        ("callstream_worker_events_folded_total", {"topic": EVENTS, "outcome": "rejected"}),
        ("callstream_worker_table_rows", {"table": "call-state"}),
        ("callstream_worker_window_emits_total", {"window": "1m"}),
        ("callstream_worker_late_dropped_total", {"window": "1d"}),
        ("callstream_worker_flush_seconds_count", {}),
        ("callstream_worker_completions_total", {"kind": "first"}),
        ("callstream_worker_completions_total", {"kind": "correction"}),
        ("callstream_worker_ready", {}),
        ("callstream_worker_store_memory_bytes", {}),
        ("callstream_worker_store_memtable_bytes", {}),
        ("process_resident_memory_bytes", {}),
    ]:
        assert (name, tuple(sorted(labels.items()))) in found, name
    await assert_promtool_passes(exposition)


async def test_a_scrape_reads_the_lag_of_the_input_partitions_and_the_sinks_rows() -> None:
    tp0, tp1, unfetched, changelog = (
        TP(EVENTS, 0),
        TP(EVENTS, 1),
        TP(EVENTS, 2),
        TP(CHANGELOG, 0),
    )
    consumer = Consumer({tp0: 10, tp1: 5, unfetched: None, changelog: 90}, {tp0: 4, tp1: 5})
    assert await consumer_lag(consumer, {EVENTS}) == {(EVENTS, 0): 6, (EVENTS, 1): 0}

    ready = [True]
    metrics = WorkerMetrics.create()
    scrape = Scrape(
        metrics, {"call-state": Rows()}, lambda: consumer, topics={EVENTS}, ready=lambda: ready[0]
    )
    found = samples(await scrape())
    lag = "callstream_worker_consumer_lag"
    assert found[(lag, (("partition", "0"), ("topic", EVENTS)))] == 6
    assert found[(lag, (("partition", "1"), ("topic", EVENTS)))] == 0
    assert not any(name == lag and dict(labels)["topic"] == CHANGELOG for name, labels in found)
    assert found[("callstream_worker_table_rows", (("table", "call-state"),))] == 7
    ready[0] = False  # a rebalance: the partitions may be gone
    assert not any(name == lag for name, _ in samples(await scrape()))


@pytest.mark.parametrize("window", ["1m", "15m", "1h", "1d"])
def test_window_emits_and_late_drops_count_per_window(window: str) -> None:
    metrics = WorkerMetrics.create()
    metrics.window_emitted(window)
    metrics.window_emitted(window, 2)
    metrics.late_dropped(window)
    values: dict[str, Any] = {
        name: metrics.registry.get_sample_value(f"{name}_total", {"window": window})
        for name in ("callstream_worker_window_emits", "callstream_worker_late_dropped")
    }
    assert values == {
        "callstream_worker_window_emits": 3,
        "callstream_worker_late_dropped": 1,
    }
