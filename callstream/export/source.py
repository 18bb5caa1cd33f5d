"""Read what the export needs from Kafka: ``callstream.calls-completed`` and
``callstream.metrics``, from :data:`READ_MARGIN_MS` before ``--since`` to the topics' ends.

The range is one of the calls' starts and the windows' starts, not of the records' timestamps
(the worker's clock when it published them): a call or a window is published after it starts,
so nothing of the range comes before ``since`` less the margin (which covers the provider's and
the worker's clocks disagreeing), but its last revision may come any time later (a corrected
CDR, a call completed by the stale timer hours after it started), so the read goes on to the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callstream.export.latest import latest_calls, latest_windows
from callstream.kafka.reading import ReadProgress, read_topics
from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.topics import CALLS_COMPLETED, METRICS

READ_MARGIN_MS = 3_600_000


@dataclass(frozen=True, repr=False)
class Exported:
    calls: list[CompletedCall]
    windows: list[WindowMetrics]
    read: int  # records read from both topics
    skipped: int  # of those, values that were no completed call or window (tombstones)

    def __repr__(self) -> str:
        # Short: asyncio formats a finished task with its result, and the whole export takes
        # seconds to print.
        return f"Exported({len(self.calls)} calls, {len(self.windows)} windows, read {self.read})"


async def read_export(
    bootstrap: str,
    names: Mapping[str, str],
    since_ms: int,
    until_ms: int | None,
    progress: ReadProgress | None = None,
) -> Exported:
    """The calls whose start and the windows whose start is in ``[since_ms, until_ms)``, each
    at its highest revision; ``names`` maps the registry's topic names to the cluster's."""
    calls, windows = latest_calls(since_ms, until_ms), latest_windows(since_ms, until_ms)
    by_topic = {names[CALLS_COMPLETED]: calls.add, names[METRICS]: windows.add}

    def sink(record: Any) -> None:
        by_topic[record.topic](record.value)

    read = await read_topics(
        bootstrap,
        list(by_topic),
        sink,
        since_ms=max(0, since_ms - READ_MARGIN_MS),
        progress=progress,
    )
    return Exported(calls.records(), windows.records(), read, calls.skipped + windows.skipped)
