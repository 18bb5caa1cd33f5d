"""What a consumer keeps of ``callstream.calls-completed`` and ``callstream.metrics``: the record
of the highest revision of each key (docs/architecture.md, "The worker's guarantee": a record
may come again after a worker restart, and a correction carries a higher revision), among those
whose time is in the export's range."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import msgspec

from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import WindowMetrics


class Revised(Protocol):
    @property
    def revision(self) -> int: ...


R = TypeVar("R", bound=Revised)


def in_range(ms: int | None, since_ms: int, until_ms: int | None) -> bool:
    """``since_ms <= ms < until_ms`` (no ``until_ms``: no end); a record without the time is
    in no range."""
    return ms is not None and since_ms <= ms and (until_ms is None or ms < until_ms)


class Latest(Generic[R]):
    """The highest revision of each key among the values added (a tie: the later one), kept
    when ``wanted`` says so. Only the revision of a key not wanted is held, so that a lower
    revision read later cannot take its place. Values that are not a ``kind`` (a tombstone,
    another schema) are counted in ``skipped``."""

    def __init__(self, kind: type[R], key: Callable[[R], str], wanted: Callable[[R], bool]) -> None:
        self._decoder = msgspec.json.Decoder(kind)
        self._key = key
        self._wanted = wanted
        self._revisions: dict[str, int] = {}
        self._kept: dict[str, R] = {}
        self.skipped = 0

    def add(self, value: bytes | None) -> None:
        if value is None:
            self.skipped += 1
            return
        try:
            record = self._decoder.decode(value)
        except msgspec.DecodeError:  # ValidationError is one too
            self.skipped += 1
            return
        key = self._key(record)
        seen = self._revisions.get(key)
        if seen is not None and record.revision < seen:
            return
        self._revisions[key] = record.revision
        if self._wanted(record):
            self._kept[key] = record
        else:
            self._kept.pop(key, None)

    def records(self) -> list[R]:
        return list(self._kept.values())


def latest_calls(since_ms: int, until_ms: int | None) -> Latest[CompletedCall]:
    """Each call's highest revision, for the calls whose start is in the range."""
    return Latest(
        CompletedCall,
        lambda call: call.call_id,
        lambda call: in_range(call.started_at_ms, since_ms, until_ms),
    )


def latest_windows(since_ms: int, until_ms: int | None) -> Latest[WindowMetrics]:
    """Each window's latest figures (its highest revision), for the windows whose start is in
    the range."""
    return Latest(
        WindowMetrics,
        WindowMetrics.key,
        lambda window: in_range(window.window_start_ms, since_ms, until_ms),
    )
