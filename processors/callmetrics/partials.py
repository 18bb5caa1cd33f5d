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


def copied(partial: Partial | None) -> Partial:
    """A share to change in place (:func:`change`): a new one, or a copy of ``partial``, which
    stays as it was (it may be stored, or cached decoded)."""
    if partial is None:
        return Partial()
    share = msgspec.structs.replace(partial)
    share.top_ring = list(share.top_ring)
    share.names = dict(share.names)
    return share


def change(
    share: Partial,
    old: CallFigures | None,
    new: CallFigures | None,
    *,
    names: bool = False,
) -> None:
    """Take one call's figures ``old`` out of ``share`` and put ``new`` in (either may be
    ``None``), in place; ``names``: keep the agent names' counts (agent windows)."""
    if old is not None and new is not None:
        _move(share, old, new, names)
    elif old is not None:
        _add(share, old, -1, names)
    elif new is not None:
        _add(share, new, 1, names)
    share.version += 1


def changed(
    partial: Partial | None,
    old: CallFigures | None,
    new: CallFigures | None,
    *,
    names: bool = False,
) -> Partial:
    """:func:`change` on a copy of ``partial``."""
    share = copied(partial)
    change(share, old, new, names=names)
    return share


def _sum(share: Partial, figures: CallFigures, sign: int) -> None:
    """The figures a share sums as they are (the same names in CallFigures and Partial), in
    (``sign`` 1) or out (-1); written out, not looped over names: it runs for each of a call's
    16 windows, twice when the call moves."""
    share.offered += sign * figures.offered
    share.answered += sign * figures.answered
    share.missed += sign * figures.missed
    share.abandoned += sign * figures.abandoned
    share.within_sla += sign * figures.within_sla
    share.billed_ms += sign * figures.billed_ms
    share.price_units += sign * figures.price_units
    share.cdr_missing += sign * figures.cdr_missing
    share.live_missing += sign * figures.live_missing


def _add(share: Partial, figures: CallFigures, sign: int, names: bool) -> None:
    """A call's figures counted in (``sign`` 1) or out (-1)."""
    _sum(share, figures, sign)
    if figures.ring_ms is not None:
        if sign > 0:
            _insert(share.top_ring, figures.ring_ms, share.ring_count)
        else:
            _remove(share.top_ring, figures.ring_ms)
        share.ring_count += sign
        share.ring_ms += sign * figures.ring_ms
    if figures.talk_ms is not None:
        share.talk_count += sign
        share.talk_ms += sign * figures.talk_ms
    if names and figures.agent_name is not None:
        _count_name(share.names, figures.agent_name, sign)


def _move(share: Partial, old: CallFigures, new: CallFigures, names: bool) -> None:
    """A counted call's figures from ``old`` to ``new``. A ring time that stays is left alone:
    taken out and put back, the smallest one kept would not be kept again (a share cannot tell
    it from those it left out), and corrections would drain the kept ones until the worker
    rebuilds them from every call state it holds."""
    _sum(share, old, -1)
    _sum(share, new, 1)
    if old.ring_ms != new.ring_ms:
        if old.ring_ms is not None:
            _remove(share.top_ring, old.ring_ms)
            share.ring_count -= 1
            share.ring_ms -= old.ring_ms
        if new.ring_ms is not None:
            _insert(share.top_ring, new.ring_ms, share.ring_count)
            share.ring_count += 1
            share.ring_ms += new.ring_ms
    if old.talk_ms != new.talk_ms:
        if old.talk_ms is not None:
            share.talk_count -= 1
            share.talk_ms -= old.talk_ms
        if new.talk_ms is not None:
            share.talk_count += 1
            share.talk_ms += new.talk_ms
    if names and old.agent_name != new.agent_name:
        if old.agent_name is not None:
            _count_name(share.names, old.agent_name, -1)
        if new.agent_name is not None:
            _count_name(share.names, new.agent_name, 1)


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
    smaller one belongs with the values the list already left out. Counted only then, and
    not when the list is full (kept, the smallest would go again): a share of a busy window
    mostly meets ring times below its 16 largest."""
    if (not top or ring_ms < top[-1][0]) and (len(top) >= TOP or _covered(top) != counted):
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
    owned: Callable[[WindowKey], Partial],
    now_ms: int,
    settings: MetricSettings,
) -> tuple[list[tuple[WindowKey, Partial]], list[WindowKey]]:
    """One call's changes (``contribution.changes``) applied, in place, to the shares
    ``owned`` gives: each one the caller's to change (:func:`copied`, or its own copy from an
    earlier change). Returns the changed shares, and the keys left alone because their
    window's grace had passed."""
    updated: list[tuple[WindowKey, Partial]] = []
    late: list[WindowKey] = []
    lateness: dict[tuple[str, int], bool] = {}  # a call's 4 dimensions share each window's
    for key, old, new in changes:
        when = (key.window, key.start_ms)
        is_late_here = lateness.get(when)
        if is_late_here is None:
            is_late_here = lateness[when] = is_late(key, now_ms, settings)
        if is_late_here:
            late.append(key)
        else:
            share = owned(key)
            change(share, old, new, names=key.dimension == "agent")
            updated.append((key, share))
    return updated, late
