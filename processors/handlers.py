"""What the call-state agents do with each input record, apart from faust: the fold of an
event or CDR, and the timer's commands. Each ends with the record handed to the shared batches,
which acknowledge it once everything it caused is delivered (processors/sink.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from callstream.processors.batches import SharedBatches
from callstream.processors.callstate import FoldSettings, evictable
from callstream.processors.sink import StepSink
from callstream.processors.step import Outcome, decode_state, expire_stored, fold_record
from callstream.processors.sweep import EVICT, wall_ms
from callstream.schemas.headers import RECEIVED_AT_MS

# Told each input record's topic and what it did (processors/ops_metrics.py counts them).
ObserveFolded = Callable[[str, Outcome], None]


def received_at_ms(event: Any) -> int:
    """The ingress's receive time when it is on the record, else the record's timestamp."""
    headers = event.message.headers or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        if name == RECEIVED_AT_MS:
            try:
                return int(value)
            except ValueError:
                break
    return int(event.message.timestamp * 1000)


class FoldHandler:
    """A live event or CDR (a faust event of the input topics) folded into its call's state."""

    def __init__(self, sink: StepSink, batches: SharedBatches, observe: ObserveFolded) -> None:
        self.sink = sink
        self.batches = batches
        self.observe = observe

    async def __call__(self, event: Any) -> None:
        partition = event.message.partition
        step = fold_record(self.sink.loader(partition), event.value, received_at_ms(event))
        await self.sink.apply(partition, step)
        self.observe(event.message.topic, step.outcome)
        await self.batches.get().done(event)


class CommandHandler:
    """The timer's command for a call (processors/sweep.py): ``expire`` completes an overdue
    call without its CDR, ``evict`` deletes a completed call past its retention."""

    def __init__(
        self,
        sink: StepSink,
        batches: SharedBatches,
        settings: FoldSettings,
        observe: ObserveFolded,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.sink = sink
        self.batches = batches
        self.settings = settings
        self.observe = observe
        self.now_ms = now_ms

    async def __call__(self, event: Any) -> None:
        outcome = await self.run(event.message.partition, event.key, event.value)
        self.observe(event.message.topic, outcome)
        await self.batches.get().done(event)

    async def run(self, partition: int, key: bytes, command: bytes) -> Outcome:
        """Carry out ``command`` for the call ``key``; the call may have changed since the
        timer read it (a CDR came), so its deadline is checked again."""
        stored = self.sink.table.get(partition, key)
        if stored is None:
            return "unchanged"  # evicted already
        if command == EVICT:
            if not evictable(decode_state(stored), self.now_ms(), self.settings.retention_ms):
                return "unchanged"
            await self.sink.write(partition, key, None, is_open=False)
            return "changed"
        step = expire_stored(stored, self.now_ms(), self.settings)
        await self.sink.apply(partition, step)
        return step.outcome
