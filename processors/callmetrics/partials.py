"""One partition's share of a window: sums over the calls of that partition in it.

The call-state fold owns a call's partition, so it changes a call's share of each window in
the same step (and the same flush) as the call's state: a replayed input finds its state
already changed and changes no window again. Sums move by (new - old). The maximum speed of
answer cannot be moved back by a subtraction, so a share keeps its ``TOP`` largest ring times;
only when corrections remove all of them is the maximum unknown (``max_known``), and the
worker rebuilds them from the partition's call states (``rebuilt``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter

import msgspec

from callstream.processors.callmetrics.contribution import CallFigures
from callstream.processors.callmetrics.windows import MetricSettings, WindowKey, is_late

TOP = 16
MAX_NAMES = 8


class Partial(msgspec.Struct, array_like=True, kw_only=True):
    """A window's figures over one partition's calls; ``version`` grows with every change."""

    version: int = 0
    offered: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    within_sla: int = 0
    ring_count: int = 0
    ring_ms: int = 0
    # The largest ring times (ms, how many calls), largest first. Every ring time not in it is
    # at most its smallest; it holds them all when its counts add up to ``ring_count``.
    top_ring: list[tuple[int, int]] = msgspec.field(default_factory=list)
    talk_count: int = 0
    talk_ms: int = 0
    billed_ms: int = 0
    price_units: int = 0
    cdr_missing: int = 0
    live_missing: int = 0
    names: dict[str, int] = msgspec.field(default_factory=dict)  # agent windows only

    @property
    def max_known(self) -> bool:
        return self.ring_count == 0 or bool(self.top_ring)

    @property
    def max_ring_ms(self) -> int | None:
        return self.top_ring[0][0] if self.top_ring else None


def changed(
    partial: Partial | None,
    old: CallFigures | None,
    new: CallFigures | None,
    *,
    names: bool = False,
) -> Partial:
    """``partial`` with one call's figures ``old`` taken out and ``new`` put in (either may
    be ``None``); ``names``: keep the agent names' counts (agent windows)."""
    share = Partial() if partial is None else msgspec.structs.replace(partial)
    share.top_ring = list(share.top_ring)
    share.names = dict(share.names)
    # A ring time that stays is left alone: taken out and put back, the smallest one kept would
    # not be kept again (a share cannot tell it from those it left out), and corrections would
    # drain the kept ones until the worker rebuilds them from every call state it holds.
    ring = old is None or new is None or old.ring_ms != new.ring_ms
    if old is not None:
        _add(share, old, -1, names, ring)
    if new is not None:
        _add(share, new, 1, names, ring)
    share.version += 1
    return share


def _add(share: Partial, figures: CallFigures, sign: int, names: bool, ring: bool) -> None:
    share.offered += sign * figures.offered
    share.answered += sign * figures.answered
    share.missed += sign * figures.missed
    share.abandoned += sign * figures.abandoned
    share.within_sla += sign * figures.within_sla
    if ring and figures.ring_ms is not None:
        if sign > 0:
            _insert(share.top_ring, figures.ring_ms, share.ring_count)
        else:
            _remove(share.top_ring, figures.ring_ms)
        share.ring_count += sign
        share.ring_ms += sign * figures.ring_ms
    if figures.talk_ms is not None:
        share.talk_count += sign
        share.talk_ms += sign * figures.talk_ms
    share.billed_ms += sign * figures.billed_ms
    share.price_units += sign * figures.price_units
    share.cdr_missing += sign * figures.cdr_missing
    share.live_missing += sign * figures.live_missing
    if names and figures.agent_name is not None:
        _count_name(share.names, figures.agent_name, sign)


def _count_name(counts: dict[str, int], name: str, sign: int) -> None:
    """Count an agent's name in or out; a share keeps at most ``MAX_NAMES`` of them (an
    extension has one or two), so that webhooks naming an agent anew each time cannot grow it
    past a Kafka record's size."""
    held = counts.get(name)
    if held is None and (sign < 0 or len(counts) >= MAX_NAMES):
        return
    count = (held or 0) + sign
    if count > 0:
        counts[name] = count
    else:
        counts.pop(name, None)


def _covered(top: list[tuple[int, int]]) -> int:
    return sum(map(itemgetter(1), top))


def _insert(top: list[tuple[int, int]], ring_ms: int, counted: int) -> None:
    """Add a ring time: kept when it is not below the list's smallest, or when the list holds
    every value (its counts add up to ``counted``, the share's ring times before this one); a
    smaller one belongs with the values the list already left out. Counted only then: a share
    of a busy window mostly meets ring times below its 16 largest."""
    if (not top or ring_ms < top[-1][0]) and _covered(top) != counted:
        return
    for index, (value, count) in enumerate(top):
        if value == ring_ms:
            top[index] = (value, count + 1)
            return
        if value < ring_ms:
            top.insert(index, (ring_ms, 1))
            break
    else:
        top.append((ring_ms, 1))
    if len(top) > TOP:
        top.pop()


def _remove(top: list[tuple[int, int]], ring_ms: int) -> None:
    """Take out a ring time; one not in the list was among those left out (not above it)."""
    for index, (value, count) in enumerate(top):
        if value == ring_ms:
            if count > 1:
                top[index] = (value, count - 1)
            else:
                del top[index]
            return


def rebuilt(partial: Partial, ring_times: Iterable[int]) -> Partial:
    """``partial`` with its largest ring times rebuilt from every ring time of its calls."""
    counts: dict[int, int] = {}
    for ring_ms in ring_times:
        counts[ring_ms] = counts.get(ring_ms, 0) + 1
    top = sorted(counts.items(), reverse=True)[:TOP]
    return msgspec.structs.replace(partial, top_ring=top)


def shares_after(
    changes: Iterable[tuple[WindowKey, CallFigures | None, CallFigures | None]],
    load: Callable[[WindowKey], Partial | None],
    now_ms: int,
    settings: MetricSettings,
) -> tuple[list[tuple[WindowKey, Partial]], list[WindowKey]]:
    """One call's changes (``contribution.changes``) applied to the shares ``load`` gives:
    the changed shares, and the keys left alone because their window's grace had passed."""
    updated: list[tuple[WindowKey, Partial]] = []
    late: list[WindowKey] = []
    for key, old, new in changes:
        if is_late(key, now_ms, settings):
            late.append(key)
        else:
            share = changed(load(key), old, new, names=key.dimension == "agent")
            updated.append((key, share))
    return updated, late
