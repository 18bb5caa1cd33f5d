"""Metric rows leave the tables: the timer finds expired shares and windows and sends a drop
on the row's partition; the commands agent deletes a row only if it is still expired."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from callstream.kafka.partitioning import murmur2_partition
from callstream.processors.callmetrics.windows import MetricSettings, WindowKey, share_key
from callstream.processors.metric_retention import DROP_SHARE, DROP_WINDOW, MetricDrops, MetricSweep

MIN = 60_000
SETTINGS = MetricSettings(
    zone="UTC", grace_ms=10 * MIN, day_grace_ms=60 * MIN, retention_ms=30 * MIN
)
OLD = WindowKey("all", "all", "1m", 0)  # ends at 1 min: grace to 11, retention to 41
DAY = WindowKey("hotline", "1900", "1d", 0)  # ends at 1440 min


class FakeTable:
    """What the sweep reads and the drops write of a table sink, in a dict by partition."""

    def __init__(self, rows: dict[bytes, int]) -> None:
        self.rows = {key: (partition, b"v") for key, partition in rows.items()}
        self.counts: list[int] = []

    def get(self, partition: int, key: bytes) -> bytes | None:
        held = self.rows.get(key)
        return held[1] if held is not None and held[0] == partition else None

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        return [(key, value) for key, (_, value) in self.rows.items()]

    def counted(self, rows: int) -> None:
        self.counts.append(rows)

    async def write(self, partition: int, key: bytes, value: bytes | None) -> None:
        assert value is None
        assert self.rows[key][0] == partition
        del self.rows[key]


def sweep(shares: FakeTable, windows: FakeTable, now: list[int], sent: list[Any]) -> MetricSweep:
    async def send(key: bytes, command: bytes, partition: int) -> None:
        sent.append((key, command, partition))

    clock = iter(range(0, 10**6, 30))
    return MetricSweep(
        shares,  # type: ignore[arg-type]
        windows,  # type: ignore[arg-type]
        send,
        12,
        settings=SETTINGS,
        ready=lambda: True,
        interval_s=60,
        now_ms=lambda: now[0],
        monotonic=lambda: float(next(clock)),
    )


async def test_shares_go_after_the_grace_windows_after_the_retention_too() -> None:
    shares = FakeTable({share_key(OLD, 3): 3, share_key(DAY, 5): 5})
    owner = murmur2_partition(b"all", 12)
    windows = FakeTable(
        {OLD.table_key(): owner, DAY.table_key(): murmur2_partition(b"hotline", 12)}
    )
    now, sent = [11 * MIN], []
    timer = sweep(shares, windows, now, sent)
    assert await timer.tick() == 0  # at the grace's last instant: kept
    now[0] += 1
    assert await timer.tick() == 0  # not due again before its interval
    assert await timer.tick() == 1
    assert sent == [(share_key(OLD, 3), DROP_SHARE, 3)]
    assert shares.counts == [2, 2]
    now[0] = 41 * MIN + 1
    sent.clear()
    await timer.tick()
    await timer.tick()
    assert sent == [(share_key(OLD, 3), DROP_SHARE, 3), (OLD.table_key(), DROP_WINDOW, owner)]


async def test_a_drop_deletes_only_a_row_still_expired_on_its_partition() -> None:
    shares = FakeTable({share_key(OLD, 3): 3, share_key(DAY, 3): 3})
    windows = FakeTable({OLD.table_key(): 7})
    now = [41 * MIN + 1]
    drops = MetricDrops(shares, windows, SETTINGS, now_ms=lambda: now[0])  # type: ignore[arg-type]
    assert not await drops.run(3, share_key(DAY, 3), DROP_SHARE)  # its day is not over
    assert not await drops.run(4, share_key(OLD, 3), DROP_SHARE)  # not on that partition
    assert await drops.run(3, share_key(OLD, 3), DROP_SHARE)
    assert not await drops.run(3, share_key(OLD, 3), DROP_SHARE)  # gone already
    now[0] = 41 * MIN
    assert not await drops.run(7, OLD.table_key(), DROP_WINDOW)  # retention's last instant
    now[0] += 1
    assert await drops.run(7, OLD.table_key(), DROP_WINDOW)
    assert set(shares.rows) == {share_key(DAY, 3)}
    assert windows.rows == {}
