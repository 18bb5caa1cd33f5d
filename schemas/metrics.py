"""``callstream.metrics``: one window's figures for one dimension value.

Names follow the industry's; docs/metrics.md defines each figure next to its Genesys and
Amazon Connect name and says where ours differs. A window counts the completed calls that
started in it, each once, with its latest content.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Window = Literal["1m", "5m", "15m", "30m", "1h", "1d"]
Dimension = Literal["all", "hotline", "agent", "direction"]
_Count = Annotated[int, msgspec.Meta(ge=0)]
_Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
_Secs = Annotated[float, msgspec.Meta(ge=0, description="seconds")]
_Amount = Annotated[float, msgspec.Meta(ge=0)]
_Millis = Annotated[int, msgspec.Meta(ge=0, description="epoch milliseconds")]


class WindowMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """The latest figures of a window; the key is ``<dimension>:<value>:<window>:<start>``.

    Rates and averages are ``None`` when their denominator is 0.
    """

    dimension: Dimension
    value: str  # "all" for the all dimension
    label: str | None = None  # the agent's name (the most frequent ``create_by.name``)
    window: Window
    zone: str = "UTC"  # the IANA time zone whose clock the window follows
    window_start_ms: _Millis
    window_end_ms: _Millis
    # Grows with every change of the window; a consumer keeps the record of the highest.
    revision: Annotated[int, msgspec.Meta(ge=1)]
    offered: _Count = 0
    answered: _Count = 0
    missed: _Count = 0
    abandoned: _Count = 0
    answered_within_sla: _Count = 0
    service_level_threshold_s: _Secs = 20.0
    answer_rate: _Rate | None = None
    abandon_rate: _Rate | None = None
    service_level: _Rate | None = None
    avg_speed_of_answer_s: _Secs | None = None
    max_speed_of_answer_s: _Secs | None = None
    avg_handle_time_s: _Secs | None = None
    talk_seconds: _Secs = 0.0  # total talk (handle) time
    billed_seconds: _Secs = 0.0
    total_price: _Amount = 0.0
    cdr_missing: _Count = 0  # calls completed by the timer, without a CDR
    live_missing: _Count = 0  # calls known from their CDR alone, without live events
    updated_at_ms: _Millis

    def key(self) -> str:
        """The Kafka key of this window's record."""
        return f"{self.dimension}:{self.value}:{self.window}:{self.window_start_ms}"
