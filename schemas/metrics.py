"""``callstream.metrics``: one window's figures for one dimension value.

Names follow the industry's (docs/metrics.md once the metrics issue lands): offered, answered,
abandoned, service level, average speed of answer (ASA), average handle time (AHT).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Window = Literal["1m", "1h", "1d"]
Dimension = Literal["all", "hotline", "agent", "direction"]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
_Secs = Annotated[float, msgspec.Meta(ge=0)]
_Amount = Annotated[float, msgspec.Meta(ge=0)]


class WindowMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """The latest figures of a window; the key is ``<dimension>:<value>:<window>:<start>``."""

    dimension: Dimension
    value: str
    window: Window
    window_start_ms: Annotated[int, msgspec.Meta(ge=0)]
    window_end_ms: Annotated[int, msgspec.Meta(ge=0)]
    revision: Annotated[int, msgspec.Meta(ge=1)]
    offered: _Count = 0
    answered: _Count = 0
    missed: _Count = 0
    abandoned: _Count = 0
    answered_within_sla: _Count = 0
    answer_rate: _Rate | None = None
    abandon_rate: _Rate | None = None
    service_level: _Rate | None = None
    avg_speed_of_answer_s: _Secs | None = None
    avg_handle_time_s: _Secs | None = None
    talk_seconds: _Secs = 0.0
    total_price: _Amount = 0.0
    updated_at_ms: Annotated[int, msgspec.Meta(ge=0)]

    def key(self) -> str:
        """The Kafka key of this window's record."""
        return f"{self.dimension}:{self.value}:{self.window}:{self.window_start_ms}"
