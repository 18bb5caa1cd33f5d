"""The soak's parts (docs/reliability.md, check 7): its settings, the traffic, a ledger of every
delivery, the samples taken as it runs, and the reconciliations at its end.

At 250 webhooks a second, 30 minutes are 450,000 webhooks: nothing here holds them. The ledger
keeps an 8-byte digest of each body and one byte of its outcome (4 MB in all); the topics are
read back batch by batch (:func:`tests.kafka_support.read_folding`), each record checked and
dropped; calls-completed is folded to a digest of each call's highest revision.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import msgspec
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition

from callstream.schemas.calls import CompletedCall
from callstream.schemas.headers import REQUEST_ID
from callstream.schemas.topics import CALLS_COMPLETED, topic_names
from callstream.traffic.delivery import Delivery
from callstream.traffic.poster import PostSummary
from callstream.traffic.simulation import Simulation, call_plans
from tests.cluster_support import topic_partitions
from tests.integration.metrics_support import latest_windows
from tests.integration.simulated_support import EVERY_FAULT, Pipeline, Simulated
from tests.kafka_support import read_folding
from tests.metrics_truth import window_mismatches
from tests.reliability.load import rss_mb
from tests.reliability.worker_kills_support import folded_in, scraped
from tests.simulated_truth import checked

SEED = 2026
PROBE_CALLS = 5000  # calls whose webhooks give the traffic's webhooks per call
RSS_SAMPLES = 3  # samples whose median is RSS just after the warm-up, and at the end
RSS_GROWTH = 0.10  # the most RSS may grow from just after the warm-up to the end
SHOWN = 5  # problems quoted in a failed check's message
CALL_STATES = "call-state"  # the worker's table of calls (processors/app.py, TABLE)


@dataclass(frozen=True)
class SoakSettings:
    """How long and how fast (``CALLSTREAM_SOAK_MINUTES``, ``CALLSTREAM_SOAK_RATE`` webhooks a
    second, ``CALLSTREAM_SOAK_SAMPLE_S``). The first ``warmup_share`` of the run is the warm-up.

    The rate is half what this stack sustains on the 2-core machine, where the poster, the
    three brokers, the ingress and the worker share its two cores: offered 500 webhooks a
    second for 10 minutes, it acked 500 a second, and from the sixth minute on the worker's
    lag grew by about 10 a second with both cores busy (the brokers about 90% of one, the
    worker 40-50%, the ingress 20-25%, the poster 20%); offered 1,000, the worker committed
    about 1,080 a second, but only for a minute, falling behind. So about 500 are sustained,
    and the soak offers 250 (docs/reliability.md, check 7).
    The worker may be ``lag_bound_s`` seconds of traffic behind at most: faust commits every
    2.8 s, and on this shared machine a busy neighbour stalls the stack for tens of seconds,
    after which it catches up; a worker that cannot keep up falls behind for good instead."""

    minutes: float = 30.0
    per_s: float = 250.0
    sample_s: float = 30.0
    warmup_share: float = 0.2
    lag_bound_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SoakSettings:
        def number(name: str, default: float) -> float:
            return float(env.get(name, "").strip() or default)

        defaults = cls()
        return cls(
            minutes=number("CALLSTREAM_SOAK_MINUTES", defaults.minutes),
            per_s=number("CALLSTREAM_SOAK_RATE", defaults.per_s),
            sample_s=number("CALLSTREAM_SOAK_SAMPLE_S", defaults.sample_s),
        )

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return self.warmup_share * self.duration_s

    @property
    def lag_bound(self) -> int:
        """The most input records the worker's group may have left uncommitted."""
        return round(self.lag_bound_s * self.per_s)


def soak_simulation(settings: SoakSettings, start_s: int) -> Simulation:
    """Calls from ``start_s`` on, every delivery fault on, as many and as frequent as make
    ``settings.per_s`` webhooks a second for ``settings.minutes`` on the traffic's own clock:
    posted at that steady rate, the calls' times keep close to the wall clock."""
    probe = Simulation(calls=PROBE_CALLS, start_s=start_s, seed=SEED, faults=EVERY_FAULT)
    per_call = sum(len(plan.deliveries) for plan in call_plans(probe)) / PROBE_CALLS
    return Simulation(
        calls=round(settings.duration_s * settings.per_s / per_call),
        start_s=start_s,
        rate=settings.per_s / per_call,
        seed=SEED,
        faults=EVERY_FAULT,
    )


def digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


NO_OUTCOME, NOT_ACKED = 0, 255  # a delivery's outcome byte; else the code of its topic


class Ledger:
    """Every delivery of the run, numbered in posting order (its request id is ``{run}-{n}``),
    as a digest of its body and its outcome: 0 none yet, the code of the topic its 2xx named
    (1: live events, 2: CDRs, in ``topics``' order), or :data:`NOT_ACKED`. Also the poster's
    progress: its live counts."""

    def __init__(self, run: str, topics: list[str]) -> None:
        self.run = run
        self.codes = {name: code for code, name in enumerate(topics, start=1)}
        self.digests = array.array("Q")
        self.outcomes = bytearray()
        self.summary = PostSummary()

    def numbered(self, deliveries: Iterable[Delivery]) -> Iterator[Delivery]:
        """The deliveries, each given its request id and entered as it is handed out."""
        for delivery in deliveries:
            number = len(self.outcomes)
            self.digests.append(digest(delivery.body))
            self.outcomes.append(NO_OUTCOME)
            yield replace(delivery, request_id=f"{self.run}-{number}")

    def index(self, request_id: str) -> int | None:
        """The delivery a request id names; None if it names none of this run's."""
        run, _, number = request_id.rpartition("-")
        if run != self.run or not number.isdigit() or int(number) >= len(self.outcomes):
            return None
        return int(number)

    def on_result(self, delivery: Delivery, status: int | None, answer: bytes) -> None:
        number = self.index(delivery.request_id)
        assert number is not None, delivery.request_id
        acked = status is not None and 200 <= status < 300
        self.outcomes[number] = self.codes[orjson.loads(answer)["topic"]] if acked else NOT_ACKED

    def update(self, summary: PostSummary) -> None:
        self.summary = summary

    def acked(self) -> int:
        return sum(self.outcomes.count(code) for code in self.codes.values())


@dataclass
class Stored:
    """What the input topics hold against the ledger: records, acked deliveries found, extra
    copies (a 503'd attempt that landed as well as its retry), records of deliveries never
    acked, and what is wrong (a record nobody sent, altered, or on another topic than its
    answer named)."""

    records: int = 0
    acked_found: int = 0
    copies: int = 0
    unacked: int = 0
    by_topic: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    wrong: int = 0
    strangers: int = 0  # records of no delivery of the run


async def stored_as_acked(
    bootstrap: str, topics: list[str], ledger: Ledger, deadline_s: float = 600
) -> Stored:
    """Read the input topics to their ends: every acked delivery is there, each record is a
    delivery of the run, byte for byte (its digest), on the topic its answer named."""
    seen = bytearray(len(ledger.outcomes))  # copies of each delivery found, up to 255
    stored = Stored()
    missing = ledger.acked()

    def wrong(problem: str) -> None:
        stored.wrong += 1
        if len(stored.problems) < SHOWN:
            stored.problems.append(problem)

    def fold(batch: list[ConsumerRecord]) -> None:
        nonlocal missing
        for record in batch:
            stored.records += 1
            stored.by_topic[record.topic] += 1
            rid = dict(record.headers).get(REQUEST_ID, b"").decode()
            number = ledger.index(rid)
            if number is None:
                stored.strangers += 1
                wrong(f"{record.topic} holds a record nobody sent: {rid!r}")
                continue
            if digest(record.value) != ledger.digests[number]:
                wrong(f"{rid} stored altered")
            outcome = ledger.outcomes[number]
            if outcome != NOT_ACKED and outcome != ledger.codes[record.topic]:
                wrong(f"{rid} on {record.topic}, acked as on another topic")
            if seen[number] == 0 and outcome not in (NO_OUTCOME, NOT_ACKED):
                missing -= 1
            seen[number] = min(seen[number] + 1, 255)

    def lacking() -> str | None:
        return f"{missing} acked webhooks not stored" if missing else None

    await read_folding(bootstrap, topics, fold, lacking, deadline_s=deadline_s)
    distinct = len(seen) - seen.count(0)
    stored.copies = stored.records - stored.strangers - distinct
    stored.acked_found = ledger.acked() - missing
    never = (NO_OUTCOME, NOT_ACKED)
    stored.unacked = sum(1 for n, count in enumerate(seen) if count and ledger.outcomes[n] in never)
    return stored


def fingerprint(call: CompletedCall) -> bytes:
    """A completed call's fields that the truth decides, as a digest."""
    fields = orjson.dumps(checked(call), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(fields, digest_size=16).digest()


@dataclass
class Completed:
    """calls-completed folded: records, calls, and records repeating a revision already seen
    (a republished output)."""

    records: int = 0
    calls: int = 0
    repeated: int = 0


async def completed_as_the_truth_says(
    pipeline: Pipeline, simulated: Simulated, deadline_s: float
) -> Completed:
    """Until the highest revision of every call on calls-completed equals the truth's, and no
    other call is there (tests/integration/simulated_support.py's check, each call held as a
    digest); raises at the deadline."""
    latest: dict[str, tuple[int, bytes]] = {}
    figures = Completed()
    expected = {call_id: fingerprint(call) for call_id, call in simulated.completed.items()}

    def fold(batch: list[ConsumerRecord]) -> None:
        for record in batch:
            figures.records += 1
            call = msgspec.json.decode(record.value, type=CompletedCall)
            held = latest.get(call.call_id)
            if held is not None and call.revision <= held[0]:
                figures.repeated += call.revision == held[0]
                continue
            latest[call.call_id] = (call.revision, fingerprint(call))

    def lacking() -> str | None:
        differ = [cid for cid, want in expected.items() if latest.get(cid, (0, b""))[1] != want]
        extra = sorted(latest.keys() - expected.keys())
        if not differ and not extra:
            return None
        return (
            f"{len(differ)} of {len(expected)} calls differ from the truth "
            f"(e.g. {differ[:SHOWN]}), {len(extra)} not simulated (e.g. {extra[:SHOWN]})"
        )

    topic = topic_names(pipeline.prefix)[CALLS_COMPLETED]
    await read_folding(pipeline.bootstrap, [topic], fold, lacking, deadline_s=deadline_s)
    figures.calls = len(latest)
    return figures


async def windows_as_the_truth_says(
    pipeline: Pipeline, simulated: Simulated, deadline_s: float
) -> int:
    """Until every window's latest record on callstream.metrics equals the truth's; raises at
    the deadline. The count of windows."""
    latest: dict[str, dict[str, Any]] = {}

    def fold(batch: list[ConsumerRecord]) -> None:
        latest_windows(batch, latest)

    def lacking() -> str | None:
        return window_mismatches(simulated.windows, latest)

    topic = topic_names(pipeline.prefix)["callstream.metrics"]
    await read_folding(pipeline.bootstrap, [topic], fold, lacking, deadline_s=deadline_s)
    return len(latest)


class GroupLag:
    """A consumer group's lag on topics: their end offsets minus its committed offsets."""

    def __init__(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group: str):
        self.admin = admin
        self.consumer = consumer
        self.group = group
        self.partitions: list[TopicPartition] = []

    async def __call__(self) -> int:
        ends = await self.consumer.end_offsets(self.partitions)
        committed = await self.admin.list_consumer_group_offsets(
            self.group, partitions=self.partitions
        )
        lag = 0
        for partition in self.partitions:
            done = committed.get(partition)
            lag += ends[partition] - (done.offset if done is not None and done.offset >= 0 else 0)
        return lag


@asynccontextmanager
async def group_lag(bootstrap: str, group: str, topics: list[str]) -> AsyncIterator[GroupLag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    try:
        await consumer.start()
        try:
            lag = GroupLag(admin, consumer, group)
            for name in topics:
                partitions = await topic_partitions(admin, name)
                lag.partitions += [TopicPartition(name, p["partition"]) for p in partitions]
            yield lag
        finally:
            await consumer.stop()
    finally:
        await admin.close()


def cpu_s(pid: int) -> float:
    """CPU time a process used so far (user and system), in seconds."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


def size_gb(path: Path) -> float:
    """The disk the files under ``path`` (the brokers' data dirs) take, in GB: blocks, not
    sizes (Kafka's index files are sparse, 10 MB each as sizes)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(folder) / name).stat().st_blocks * 512
            except FileNotFoundError:  # a segment deleted meanwhile
                continue
    return total / 1e9


@dataclass(frozen=True)
class Sample:
    at_s: float
    sent: int
    acked: int
    refused: int
    failed: int
    retried: int
    rate: float  # acked a second since the previous sample
    ingress_rss_mb: float
    worker_rss_mb: float
    ingress_cpu: float  # share of one core since the previous sample
    worker_cpu: float
    lag: int
    folded_rate: float  # input records the worker processed a second since the previous sample
    rows: dict[str, float]  # the worker's tables' rows (call states, shares, windows)
    store_mb: float  # the worker's RocksDB memory in its budget, memtables included (/metrics)
    kafka_gb: float

    def line(self) -> str:
        return (
            f"[soak] {self.at_s:6.0f} s  acked {self.acked:>9,} ({self.rate:5.0f}/s)  "
            f"refused {self.refused}  failed {self.failed}  retried {self.retried}  "
            f"RSS ingress {self.ingress_rss_mb:6.1f} MB worker {self.worker_rss_mb:6.1f} MB "
            f"(stores {self.store_mb:4.1f} MB)  "
            f"CPU ingress {self.ingress_cpu:4.0%} worker {self.worker_cpu:4.0%}  "
            f"folded {self.folded_rate:5.0f}/s  lag {self.lag:>7,}  "
            f"call states {self.rows.get(CALL_STATES, 0):>8,.0f}  kafka {self.kafka_gb:5.2f} GB"
        )


class Sampler:
    """A sample every ``every_s`` while the traffic runs, each printed as it is taken."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        pids: tuple[int, int],  # the ingress's, the worker's
        worker_url: str,
        lag: GroupLag,
        data_dir: Path,
        every_s: float,
    ) -> None:
        self.ledger = ledger
        self.pids = pids
        self.worker_url = worker_url
        self.lag = lag
        self.data_dir = data_dir
        self.every_s = every_s
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self._cpu = (cpu_s(pids[0]), cpu_s(pids[1]))
        self._folded = 0.0

    async def worker_figures(self) -> tuple[float, dict[str, float], float]:
        """Input records the worker processed so far, its tables' rows, and its stores' memory
        in MB (its /metrics)."""
        families = await scraped(self.worker_url)
        topics = set(self.ledger.codes)
        folded = sum(n for (topic, _), n in folded_in(families).items() if topic in topics)

        def values(name: str) -> list[tuple[dict[str, str], float]]:
            found = (f.samples for f in families if f.name == name)
            return [(sample.labels, sample.value) for samples in found for sample in samples]

        rows = {labels["table"]: n for labels, n in values("callstream_worker_table_rows")}
        store = sum(n for _, n in values("callstream_worker_store_memory_bytes")) / 2**20
        return folded, rows, store

    async def take(self) -> Sample:
        now = time.monotonic() - self.started
        summary = self.ledger.summary
        last = self.samples[-1] if self.samples else None
        span = now - last.at_s if last else 0.0
        cpu = (cpu_s(self.pids[0]), cpu_s(self.pids[1]))
        folded, rows, store_mb = await self.worker_figures()
        sample = Sample(
            at_s=now,
            sent=summary.sent,
            acked=summary.acked,
            refused=summary.refused,
            failed=summary.failed,
            retried=summary.retried,
            rate=(summary.acked - last.acked) / span if last and span else 0.0,
            ingress_rss_mb=rss_mb(self.pids[0]),
            worker_rss_mb=rss_mb(self.pids[1]),
            ingress_cpu=(cpu[0] - self._cpu[0]) / span if span else 0.0,
            worker_cpu=(cpu[1] - self._cpu[1]) / span if span else 0.0,
            lag=await self.lag(),
            folded_rate=(folded - self._folded) / span if span else 0.0,
            rows=rows,
            store_mb=store_mb,
            kafka_gb=await asyncio.to_thread(size_gb, self.data_dir),
        )
        self._cpu = cpu
        self._folded = folded
        self.samples.append(sample)
        print(sample.line(), flush=True)
        return sample

    async def run(self) -> None:
        """Sample on the period until cancelled (a period, not a wait for a condition)."""
        ticks = 0
        while True:
            await self.take()
            ticks += 1
            await asyncio.sleep(max(0.0, self.started + ticks * self.every_s - time.monotonic()))


@dataclass(frozen=True)
class Growth:
    """RSS just after the warm-up and at the end (each the median of a few samples)."""

    after_warmup_mb: float
    end_mb: float
    peak_mb: float

    @property
    def share(self) -> float:
        return self.end_mb / self.after_warmup_mb - 1


def rss_growth(samples: list[Sample], warmup_s: float, worker: bool) -> Growth:
    values = [
        s.worker_rss_mb if worker else s.ingress_rss_mb for s in samples if s.at_s >= warmup_s
    ]
    assert len(values) >= 2 * RSS_SAMPLES, f"{len(values)} samples after the warm-up: too few"
    return Growth(
        statistics.median(values[:RSS_SAMPLES]),
        statistics.median(values[-RSS_SAMPLES:]),
        max(values),
    )


ERROR_LEVELS = frozenset({"error", "critical", "fatal"})
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def logged(path: Path, start: int = 0, end: int | None = None) -> tuple[list[str], Counter[str]]:
    """A service's log from byte ``start`` to ``end``: its lines at error level or above (a JSON
    line's ``level``; another line naming ERROR or CRITICAL, or a traceback), and its warnings
    counted by message (numbers masked: a timer's runtime differs each time)."""
    errors: list[str] = []
    warnings: Counter[str] = Counter()
    with path.open("rb") as lines:
        lines.seek(start)
        at = start
        for raw in lines:
            at += len(raw)
            if end is not None and at > end:
                break
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                line = None
            if not isinstance(line, dict):
                text = raw.decode(errors="replace").rstrip()
                if any(word in text for word in ("ERROR", "CRITICAL", "Traceback")):
                    errors.append(text)
                elif "WARNING" in text:
                    warnings[NUMBER.sub("#", text)[:160]] += 1
                continue
            level = str(line.get("level", "")).lower()
            if level in ERROR_LEVELS:
                errors.append(raw.decode(errors="replace").rstrip())
            elif level == "warning":
                warnings[NUMBER.sub("#", f"{line.get('logger')}: {line.get('msg')}")[:160]] += 1
    return errors, warnings


@dataclass
class Verdict:
    """Each check's outcome and figures, in the order run: a failed one does not stop the rest."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, name: str, passed: bool, detail: str) -> None:
        self.checks[name] = {"passed": passed, "detail": detail}
        print(f"[soak] {'PASS' if passed else 'FAIL'} {name}: {detail}", flush=True)

    async def run(self, name: str, check: Awaitable[str]) -> None:
        """``check`` returns its figures as text; an exception (an AssertionError, a Kafka
        error) fails it with its text."""
        try:
            detail = await check
        except Exception as failure:
            self.record(name, False, str(failure) or repr(failure))
        else:
            self.record(name, True, detail)

    @property
    def failed(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check["passed"]]
