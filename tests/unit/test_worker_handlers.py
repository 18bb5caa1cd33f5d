"""The agents' work per record, without faust or a broker: a webhook folded into its call's
state and outputs, the timer's commands, rows counted, and each input record acknowledged only
once everything it caused is delivered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

from callstream.processors.app import OUTPUT_TOPICS
from callstream.processors.batches import SharedBatches
from callstream.processors.callstate import FoldSettings
from callstream.processors.handlers import CommandHandler, FoldHandler, received_at_ms
from callstream.processors.sink import Outputs, StepSink, TableSink
from callstream.processors.step import Outcome, decode_state
from callstream.processors.sweep import EVICT, EXPIRE, OpenCalls
from callstream.processors.tablestore import TableStore
from callstream.schemas.headers import RECEIVED_AT_MS
from callstream.schemas.topics import CALL_STATE, CALLS_COMPLETED, LIVE_CALLS, REJECTED
from tests.unit.schema_fixtures import cdr, event
from tests.unit.test_callstate import CALL, CDR, RINGING, T0
from tests.unit.test_sweep import deadline_of, stored
from tests.unit.test_tablestore import FaustStore
from tests.unit.test_worker_batches import Event, Producer, flush_delivered

SETTINGS = FoldSettings(cdr_timeout_ms=1_000, stale_timeout_ms=2_000, retention_ms=3_000)
EVENTS, COMMANDS, CHANGELOG = "p.omicall.call-events", "w-commands", "w-call-state-changelog"
KEY = CALL.encode()


@dataclass
class Message:
    topic: str
    partition: int
    headers: Any = field(default_factory=list)
    timestamp: float = T0 / 1000


class Input(Event):
    """A faust event as the handlers read it."""

    def __init__(self, message: Message, value: bytes, key: bytes = b"") -> None:
        super().__init__()
        self.message, self.key, self.value = message, key, value


class Worker:
    """The call-state table, the outputs and the batches, on a fake producer."""

    def __init__(self) -> None:
        self.producer = Producer()
        self.batches = SharedBatches(lambda: self.producer)  # type: ignore[arg-type,return-value]
        self.store = FaustStore()
        self.table = TableSink("call-state", TableStore(self.store, None), CHANGELOG, self.batches)
        outputs = Outputs({name: f"p.{name}" for name in OUTPUT_TOPICS}, self.batches)
        self.open_calls = OpenCalls(full_scan_interval_s=60, deadline_of=deadline_of)
        self.sink = StepSink(self.table, outputs, self.open_calls)
        self.observed: list[tuple[str, Outcome]] = []

    def observe(self, topic: str, outcome: Outcome) -> None:
        self.observed.append((topic, outcome))

    async def delivered(self) -> list[str]:
        """Flush, and Kafka acknowledges every batch: the topics written, in order."""
        await flush_delivered(self.batches.get(), self.producer)
        return [tp.topic for tp, _, _ in self.producer.sent]


def ringing(partition: int = 5) -> Input:
    headers = [(RECEIVED_AT_MS, str(T0).encode())]
    return Input(Message(EVENTS, partition, headers), orjson.dumps(event()))


async def test_a_webhook_changes_its_call_and_is_acked_once_its_records_are_delivered() -> None:
    worker = Worker()
    fold = FoldHandler(worker.sink, worker.batches, worker.observe)
    first = ringing()
    await fold(first)
    assert worker.observed == [(EVENTS, "changed")]
    assert decode_state(worker.table.get(5, KEY) or b"").status == "ringing"
    assert worker.open_calls.items() == [(KEY, 5)]
    assert worker.table.rows == 1
    assert first.acks == 0  # nothing delivered yet
    written = await worker.delivered()
    assert written == [f"p.{CALL_STATE}", f"p.{LIVE_CALLS}", CHANGELOG]  # the outputs first
    assert worker.producer.sent[2][0].partition == 5  # the changelog's: the input's partition
    assert worker.store.data[KEY] == worker.table.get(5, KEY)  # stored once delivered
    assert first.acks == 1

    again = ringing()
    await fold(again)
    await fold(bad := Input(Message(EVENTS, 5), b'{"state": "ringing"'))
    assert worker.observed[1:] == [(EVENTS, "unchanged"), (EVENTS, "rejected")]
    assert (await worker.delivered())[3:] == [f"p.{REJECTED}"]
    assert (again.acks, bad.acks) == (1, 1)
    assert worker.table.rows == 1

    answered = {**event(), "state": "answered", "date_time": event()["date_time"] + 5_000}
    await fold(Input(Message(EVENTS, 5), orjson.dumps(answered)))
    assert decode_state(worker.table.get(5, KEY) or b"").status == "answered"
    assert worker.table.rows == 1  # the call's row replaced, not one more


async def test_the_timer_finds_each_open_call_at_the_deadline_of_its_latest_state() -> None:
    worker = Worker()
    fold = FoldHandler(worker.sink, worker.batches, worker.observe)
    deadlines = []
    for offset, state in ((0, "ringing"), (5_000, "answered"), (65_000, "hangup")):
        body = {**event(), "state": state, "date_time": event()["date_time"] + offset}
        await fold(Input(Message(EVENTS, 5), orjson.dumps(body)))
        deadline, completed = deadline_of(worker.table.get(5, KEY) or b"")
        assert not completed
        assert worker.open_calls.due(deadline - 1) == []
        assert worker.open_calls.due(deadline) == [(KEY, 5)]
        deadlines.append(deadline)
    assert deadlines[2] < deadlines[0]  # ended: waits for its CDR a shorter time than ringing
    await fold(Input(Message(EVENTS, 5), orjson.dumps(cdr() | {"transaction_id": CALL})))
    assert decode_state(worker.table.get(5, KEY) or b"").status == "completed"
    assert worker.open_calls.items() == []  # completed: only the full scan looks at it


async def test_the_commands_expire_an_overdue_call_and_evict_a_completed_one() -> None:
    worker = Worker()
    now = [0]
    run = CommandHandler(worker.sink, worker.batches, SETTINGS, worker.observe, lambda: now[0])
    open_call, completed = stored(RINGING), stored(RINGING, CDR)
    for key, value in ((KEY, open_call), (b"done", completed)):
        await worker.table.write(0, key, value)
    await worker.delivered()
    assert worker.table.rows == 2

    def commands() -> list[Input]:
        sent = ((KEY, EXPIRE), (b"done", EVICT), (b"unknown", EVICT))
        return [Input(Message(COMMANDS, 0), command, key) for key, command in sent]

    now[0] = deadline_of(open_call)[0] - 1
    early = commands()
    for command in early:
        await run(command)
    assert [outcome for _, outcome in worker.observed] == ["unchanged"] * 3  # not due yet

    now[0] = max(deadline_of(open_call)[0], deadline_of(completed)[0])
    due = commands()
    for command in due:
        await run(command)
    assert worker.observed[3:] == [
        (COMMANDS, "changed"),
        (COMMANDS, "changed"),
        (COMMANDS, "unchanged"),  # a call evicted already
    ]
    assert decode_state(worker.table.get(0, KEY) or b"").status == "completed"
    assert worker.table.get(0, b"done") is None
    assert worker.table.rows == 1
    before = len(worker.producer.sent)
    written = (await worker.delivered())[before:]
    expired = [CHANGELOG, f"p.{CALL_STATE}", f"p.{CALLS_COMPLETED}", f"p.{LIVE_CALLS}"]
    assert sorted(written) == sorted(expired)
    assert [command.acks for command in early + due] == [1] * 6
    batch = next(b for tp, b, _ in worker.producer.sent if tp.topic == f"p.{CALLS_COMPLETED}")
    completed_call = msgspec.json.decode(batch.records[0][1] or b"")
    assert completed_call["cdr_missing"] is True


async def test_rows_are_counted_by_the_writes_and_reset_by_a_full_count() -> None:
    worker = Worker()
    table = worker.table
    await table.write(0, b"a", b"1")
    await table.write(0, b"a", b"2")  # the same row
    await table.write(1, b"b", b"1")
    await table.write(1, b"c", None)  # deleting nothing
    assert table.rows == 2
    await table.write(0, b"a", None)
    assert table.rows == 1
    table.counted(40)  # recovered rows, found by the timer's full scan
    await table.write(0, b"d", b"1")
    assert table.rows == 41


def test_the_receive_time_is_the_ingress_header_else_the_record_timestamp() -> None:
    with_header = Input(Message(EVENTS, 0, {RECEIVED_AT_MS: b"1234"}), b"")
    assert received_at_ms(with_header) == 1234
    assert received_at_ms(Input(Message(EVENTS, 0, [(RECEIVED_AT_MS, b"x")]), b"")) == T0
    assert received_at_ms(Input(Message(EVENTS, 0, None), b"")) == T0


async def test_a_calls_first_completed_record_and_its_corrections_are_counted_apart() -> None:
    worker = Worker()
    completions: list[bool] = []
    worker.sink.observe_completed = completions.append
    fold = FoldHandler(worker.sink, worker.batches, worker.observe)
    first = cdr() | {"transaction_id": CALL}
    corrected = first | {"last_updated_date": first["last_updated_date"] + 1, "answer_sec": 6}
    for body in (event(), first, first, corrected):
        await fold(Input(Message(EVENTS, 5), orjson.dumps(body)))
    assert [outcome for _, outcome in worker.observed] == [
        "changed",
        "changed",
        "unchanged",  # the duplicate CDR publishes nothing
        "changed",
    ]
    assert completions == [True, False]  # the first completed record, then one correction
