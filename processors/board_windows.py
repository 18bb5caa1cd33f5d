"""The metric windows the wallboard shows, as ``callstream.metrics`` gives them: pure, no I/O
(a :class:`~callstream.processors.topic_feed.TopicFeed` fills it on every worker).

Only the windows a board reads are kept (each hotline's, agent's and the whole centre's hour
and day, and the whole centre's minutes), each at its highest revision: the topic may carry a
window's records again after a worker restart, and an older one must not win.
"""

from __future__ import annotations

import msgspec

from callstream.schemas.metrics import WindowMetrics

# (dimension, window) pairs the board shows.
KEPT: frozenset[tuple[str, str]] = frozenset(
    {(dimension, window) for dimension in ("all", "hotline", "agent") for window in ("1h", "1d")}
    | {("all", "1m")}
)
_decode = msgspec.json.Decoder(WindowMetrics).decode


def kept_key(key: bytes) -> bool | None:
    """Whether a ``<dimension>:<value>:<window>:<start>`` key names a window the board shows;
    ``None`` when it is not such a key. The value may hold colons (an agent's extension comes
    from webhooks): the dimension is before the first, the window and start after the last two.
    """
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    dimension, _, rest = text.partition(":")
    parts = rest.rsplit(":", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return (dimension, parts[1]) in KEPT


class BoardWindows:
    """The latest :class:`WindowMetrics` of each kept window, by its topic key."""

    def __init__(self) -> None:
        self._windows: dict[bytes, WindowMetrics] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record of ``callstream.metrics``: kept when it is a window the board shows and
        its revision is not below the one held (the later of two with one revision: a window
        re-sent after a worker kill, docs/metrics.md). False for a record that does not read."""
        if key is None or value is None:
            return False
        kept = kept_key(key)
        if kept is None:
            return False
        if not kept:
            return True
        try:
            window = _decode(value)
        except msgspec.DecodeError:
            return False
        held = self._windows.get(key)
        if held is None or window.revision >= held.revision:
            self._windows[key] = window
        return True

    def prune(self, before_ms: int) -> None:
        """Forget the windows that ended at or before ``before_ms``: no board shows them."""
        for key in [k for k, w in self._windows.items() if w.window_end_ms <= before_ms]:
            del self._windows[key]

    def clear(self) -> None:
        self._windows.clear()

    def windows(self) -> list[WindowMetrics]:
        return list(self._windows.values())

    def __len__(self) -> int:
        return len(self._windows)
