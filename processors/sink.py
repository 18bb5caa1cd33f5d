"""Where the agents' writes go: tables they write themselves and records to output topics, all
appended to the worker's one ``OutputBatches`` (processors/batches.py), so that nothing waits
for Kafka per record and an input record is acked once everything it caused is delivered.

At-least-once, without a broker round-trip per record. The agents consume with acks off
(``stream.noack()``) and acknowledge an input record only once Kafka has acknowledged (acks=all)
everything it produced: its tables' changelog records and its outputs, a Kafka batch per topic
partition flushed every 100 ms. faust commits, per partition, only up to the first record not
yet acknowledged, and flushes the producer before every commit too, so a committed offset never
runs ahead of an output or a table change; a worker taking over the partition recovers tables
that have every committed record in them. A record whose batch fails is never acknowledged: the
worker logs it and exits (``EXIT_SEND_FAILED``) so that a restart, or the worker taking over,
processes it again. Acks come from delivery callbacks, never from "the next record", so a quiet
partition does not leave its last records unacknowledged (faust waits for every record in
flight before a rebalance or a shutdown goes on). A record processed twice changes nothing the
second time: the folds are idempotent.

A faust table write queues its changelog record in faust's producer buffer and hides the send's
future; so :class:`TableSink` writes the table's store (processors/tablestore.py) and adds the
same changelog record (key, value, the input record's partition: faust's own choice for a table
without a partitioner) to the batches itself, and once Kafka has it records the offset in the
store as faust would, so that a restart recovers only the changelog past it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from callstream.processors.batches import Delivered, OutputBatches, SharedBatches
from callstream.processors.step import Record, Step
from callstream.processors.sweep import OpenCalls
from callstream.processors.tablestore import TableStore

if TYPE_CHECKING:
    from callstream.processors.metric_sinks import ShareWriter


class TableSink:
    """One faust table the agents write themselves, with its changelog records in the shared
    batches. Any table whose keys and values are bytes: one per table, each agent writing on
    the partition of the record it processes (faust's RocksDB store requires it)."""

    def __init__(
        self,
        name: str,
        store: TableStore,
        changelog: str,
        batches: SharedBatches,
        prefix: bytes = b"",
    ):
        """``prefix``: the rows of a :meth:`section` are those under it, in its table."""
        self.name = name
        self.store = store
        self.changelog = changelog
        self.batches = batches
        batches.holds_state(changelog)
        self.prefix = prefix
        self._sections: tuple[bytes, ...] = ()
        self._rows = 0

    def section(self, name: str, prefix: bytes) -> TableSink:
        """Rows of another kind kept in this table under ``prefix`` (no key of this table's
        own may start with it): one changelog, so an input record's changes of both kinds on
        a partition reach Kafka in one batch, written whole (docs/architecture.md, The
        worker's guarantee)."""
        if not prefix or self.prefix:
            raise ValueError("a section needs a prefix, in a table that is no section itself")
        self._sections += (prefix,)
        return TableSink(name, self.store, self.changelog, self.batches, prefix)

    @classmethod
    def of(cls, table: Any, batches: SharedBatches) -> TableSink:
        """The sink of a faust table (``app.Table(...)``), writing its changelog topic."""
        name: str = table.name
        changelog: str = table.changelog_topic.get_topic_name()
        return cls(name, TableStore.of(table.data), changelog, batches)

    @property
    def rows(self) -> int:
        """Rows in this worker's partitions, as of the last :meth:`counted` and the writes
        since (rows recovered from the changelog pass no sink: only a count finds them)."""
        return self._rows

    def counted(self, rows: int) -> None:
        """A read of every row (processors/sweep.py's full scan) found ``rows``."""
        self._rows = rows

    def get(self, partition: int, key: bytes) -> bytes | None:
        """The value under ``key``, in ``partition`` (its writes not yet delivered included)."""
        return self.store.get(partition, self.prefix + key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every key and value this worker's partitions hold (its sections' rows apart);
        reading does not yield to the event loop, so no agent writes meanwhile."""
        if self.prefix:
            cut = len(self.prefix)
            return ((k[cut:], v) for k, v in self.store.items() if k.startswith(self.prefix))
        if self._sections:
            return ((k, v) for k, v in self.store.items() if not k.startswith(self._sections))
        return self.store.items()

    def scan(self, partition: int, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """The rows of ``partition`` whose keys start with ``prefix`` (this table's or
        section's own keys; the waiting writes included); not in order. A store of every
        partition (memory) gives the other partitions' rows too."""
        cut = len(self.prefix)
        for key, value in self.store.scan(partition, self.prefix + prefix):
            yield key[cut:], value

    async def write(
        self, partition: int, key: bytes, value: bytes | None, *, replaces: bool | None = None
    ) -> None:
        """``table[key] = value`` (``del`` for None) in ``partition``, and its changelog record.
        The store has the write before this first yields to the event loop. ``replaces``:
        whether the key holds a value now, when the caller read it (None: read here)."""
        key = self.prefix + key
        applied = self._put(partition, key, value, replaces)
        await self.batches.get().add(self.changelog, partition, key, value, applied)

    def write_in_flush(
        self,
        batches: OutputBatches,
        partition: int,
        key: bytes,
        value: bytes | None,
        *,
        replaces: bool | None = None,
    ) -> None:
        """:meth:`write` from a before-flush hook (processors/batches.py), into its flush."""
        key = self.prefix + key
        applied = self._put(partition, key, value, replaces)
        batches.append(self.changelog, partition, key, value, applied)

    def _put(
        self, partition: int, key: bytes, value: bytes | None, replaces: bool | None = None
    ) -> Delivered:
        """Store ``value`` under the whole ``key`` (its prefix included)."""
        if replaces is None:
            replaces = self.store.get(partition, key) is not None
        self._rows += (value is not None) - replaces
        return self.store.put(partition, key, value)


class Outputs:
    """Records to the worker's output topics, by logical name (``callstream.call-state``), in
    the shared batches, on the partition Kafka's default partitioner picks for their key."""

    def __init__(self, topics: Mapping[str, str], batches: SharedBatches) -> None:
        """``topics``: each logical name's topic in the cluster (after the prefix)."""
        self.topics = topics
        self.batches = batches

    async def partitions(self, records: Sequence[Record]) -> list[int]:
        """Each record's partition. Looking one up may wait for metadata: do it before writing
        a table, since a flush in that wait would split the changelog record from the outputs."""
        batches = self.batches.get()
        return [await batches.partition(self.topics[r.topic], r.key) for r in records]

    async def add(self, records: Sequence[Record], partitions: Sequence[int]) -> None:
        batches = self.batches.get()
        for record, partition in zip(records, partitions, strict=True):
            await batches.add(self.topics[record.topic], partition, record.key, record.value)


# Told, each time a call's completed record is published, whether it is the call's first
# (``True``) or a correction of it (processors/ops_metrics.py counts them).
ObserveCompleted = Callable[[bool], None]


class StepSink:
    """A call-state step (processors/step.py): the call's new state in the call-state table and
    the step's records, added together; the timer's open calls noted as they change."""

    def __init__(
        self,
        table: TableSink,
        outputs: Outputs,
        open_calls: OpenCalls,
        shares: ShareWriter | None = None,
        *,
        observe_completed: ObserveCompleted | None = None,
    ) -> None:
        """``shares``: the metrics' shares of the call's windows, changed with its completed
        record (processors/metric_sinks.py); None counts no metrics."""
        self.table = table
        self.outputs = outputs
        self.open_calls = open_calls
        self.shares = shares
        self.observe_completed = observe_completed

    def loader(self, partition: int) -> Callable[[str], bytes | None]:
        """``fold_record``'s ``load``: a call's stored state, in ``partition``."""
        table = self.table
        return lambda call_id: table.get(partition, call_id.encode())

    async def write(
        self,
        partition: int,
        key: bytes,
        value: bytes | None,
        *,
        is_open: bool,
        replaces: bool | None = None,
    ) -> None:
        """Store ``value`` under ``key`` (None deletes); ``is_open``: the call is not completed,
        so the timer checks it once its deadline passes (noted with the store's write, before
        anything yields to the timer); ``replaces``: as :meth:`TableSink.write`."""
        self.open_calls.note(key, partition, value if is_open else None)
        await self.table.write(partition, key, value, replaces=replaces)

    async def apply(self, partition: int, step: Step) -> None:
        """Store the step's state and add its records."""
        partitions = await self.outputs.partitions(step.records)
        if step.call_id is not None and step.stored is not None:
            key = step.call_id.encode()
            await self.write(
                partition, key, step.stored, is_open=step.is_open, replaces=step.replaces
            )
        await self.outputs.add(step.records, partitions)
        if self.observe_completed is not None and step.completed_after is not None:
            self.observe_completed(step.completed_before is None)
        changed = step.completed_before is not None or step.completed_after is not None
        if self.shares is not None and step.call_id is not None and changed:
            await self.shares.apply(
                partition, step.call_id, step.completed_before, step.completed_after
            )
