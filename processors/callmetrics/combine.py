"""A window's published figures: its partitions' shares added up.

Each partition sends its whole share of a window, with the share's version, every time it
changes. The window keeps the latest share of each partition (a share it holds, or one whose
version it passed, changes nothing: a duplicate, a replay, or one overtaken) and publishes their
sum, so it is exact whatever the delivery. At most one share per input partition.
"""

from __future__ import annotations

import msgspec

from callstream.processors.callmetrics.contribution import PRICE_UNITS
from callstream.processors.callmetrics.partials import Partial
from callstream.processors.callmetrics.windows import MetricSettings, WindowKey, window_end
from callstream.schemas.metrics import WindowMetrics


class ShareUpdate(msgspec.Struct, array_like=True):
    """A partition's new share of a window: what the fold sends the window's owner."""

    key: bytes  # WindowKey.table_key()
    partition: int
    share: Partial


class Window(msgspec.Struct, array_like=True):
    """The latest share of each partition that counted calls in the window, and when it last
    changed (the worker's clock)."""

    shares: dict[int, Partial] = msgspec.field(default_factory=dict)
    updated_at_ms: int = 0


def for_window(share: Partial) -> Partial:
    """What a window needs of a share: its sums and its maximum, not the ring times below it
    that a partition keeps for corrections (a window holds a share per partition, and is
    written whole at every change)."""
    return (
        share
        if len(share.top_ring) <= 1
        else msgspec.structs.replace(share, top_ring=share.top_ring[:1])
    )


def merged(window: Window | None, update: ShareUpdate) -> Window | None:
    """``window`` with ``update``'s share, or ``None`` when it holds that version or a later
    one (nothing to change or publish: a share sent again, or overtaken). A share is sent only
    once the changelog holding it is delivered, so one version has one content
    (docs/metrics.md, Exact under any delivery)."""
    held = None if window is None else window.shares.get(update.partition)
    if held is not None and held.version >= update.share.version:
        return None
    shares = {} if window is None else dict(window.shares)
    shares[update.partition] = update.share
    return Window(shares, 0 if window is None else window.updated_at_ms)


_FIELD = {name: index for index, name in enumerate(Partial.__struct_fields__)}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _seconds(total_ms: int, count: int) -> float | None:
    return total_ms / count / 1000 if count else None


def window_metrics(
    key: WindowKey, window: Window, settings: MetricSettings, updated_at_ms: int
) -> WindowMetrics:
    """The published figures of ``window``: its shares added up."""
    shares = list(window.shares.values()) or [Partial()]
    columns = list(zip(*map(msgspec.structs.astuple, shares), strict=True))

    def total(field: str) -> int:
        return sum(columns[_FIELD[field]])

    offered, answered = total("offered"), total("answered")
    ring_count, talk_count = total("ring_count"), total("talk_count")
    maxima = [share.max_ring_ms for share in shares if share.max_ring_ms is not None]
    names: dict[str, int] = {}
    for share in shares:
        for name, count in share.names.items():
            names[name] = names.get(name, 0) + count
    return WindowMetrics(
        dimension=key.dimension,
        value=key.value,
        label=min(names, key=lambda name: (-names[name], name)) if names else None,
        window=key.window,
        zone=settings.zone,
        window_start_ms=key.start_ms,
        window_end_ms=window_end(key, settings),
        revision=max(1, total("version")),
        offered=offered,
        answered=answered,
        missed=total("missed"),
        abandoned=total("abandoned"),
        answered_within_sla=total("within_sla"),
        service_level_threshold_s=settings.service_level_s,
        answer_rate=_ratio(answered, offered),
        abandon_rate=_ratio(total("abandoned"), offered),
        service_level=_ratio(total("within_sla"), offered),
        avg_speed_of_answer_s=_seconds(total("ring_ms"), ring_count),
        max_speed_of_answer_s=max(maxima) / 1000 if maxima and ring_count else None,
        avg_handle_time_s=_seconds(total("talk_ms"), talk_count),
        talk_seconds=total("talk_ms") / 1000,
        billed_seconds=total("billed_ms") / 1000,
        total_price=total("price_units") / PRICE_UNITS,
        cdr_missing=total("cdr_missing"),
        live_missing=total("live_missing"),
        updated_at_ms=updated_at_ms,
    )
