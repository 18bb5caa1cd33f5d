"""Read topics' records into a capture file that `replay` posts again (docs/traffic.md).

The reading, by time and merged into timestamp order, is callstream/kafka/reading.py's; this
writes each record as a capture line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, BinaryIO

from callstream.kafka.reading import ReadProgress, read_topics
from callstream.traffic.recording import capture_line


async def capture(
    bootstrap: str,
    topics: Sequence[str],
    out: BinaryIO,
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    progress: ReadProgress | None = None,
) -> int:
    """Write ``topics``' records (names on the cluster) in ``[since_ms, until_ms)`` (epoch ms of
    the records' timestamps; unset: from the beginning, up to the end offsets at the start) to
    ``out`` as capture lines; returns how many."""

    def write(record: Any) -> None:
        out.write(capture_line(record))

    return await read_topics(
        bootstrap, topics, write, since_ms=since_ms, until_ms=until_ms, progress=progress
    )
