"""`callstream replay` and `callstream capture` on the real broker through real ingress
processes: bodies land byte for byte, and a capture replayed into a second set of topics gives
the same bytes in the same order per partition."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path

import orjson
from aiokafka.structs import ConsumerRecord

from callstream.schemas.topics import CALL_EVENTS, CDRS, topic_names
from tests.integration.cli_helpers import Run, callstream
from tests.integration.ingress_support import TOKEN, ingress_process, sample
from tests.kafka_support import read_topic

WEBHOOKS = "/webhooks/omicall"


def _recording() -> tuple[list[bytes], list[bytes]]:
    """The lines of a replay file (one bad) and the event and CDR bodies it should publish."""
    ringing = orjson.loads(sample("event-ringing.json"))
    started = ringing["date_time"]
    answered = {**ringing, "state": "answered", "date_time": started + 5000, "note": "Trần"}
    hangup = {"state": "hangup", **{k: v for k, v in ringing.items() if k != "state"}}
    other = {**ringing, "call_uuid": str(uuid.uuid4()), "date_time": started + 20_000}
    events = [
        orjson.dumps(ringing),
        # spaces and raw UTF-8: posted as written, not re-encoded
        json.dumps(answered, ensure_ascii=False).encode(),
        json.dumps({**hangup, "date_time": started + 12_000}, indent=None).encode(),
        orjson.dumps(other),
    ]
    cdr = orjson.dumps(orjson.loads(sample("cdr.json")))
    lines = [events[0], events[1], b"this is not json", events[2], cdr, events[3]]
    return lines, [*events, cdr]


async def _run(*args: str, env: dict[str, str]) -> Run:
    return await asyncio.to_thread(callstream, *args, env=env)


async def _read(bootstrap: str, prefix: str, events: int, cdrs: int) -> list[ConsumerRecord]:
    names = topic_names(prefix)
    return [
        *await read_topic(bootstrap, names[CALL_EVENTS], expect=events, settle_s=0.5),
        *await read_topic(bootstrap, names[CDRS], expect=cdrs, settle_s=0.5),
    ]


def _by_partition(records: list[ConsumerRecord], prefix: str) -> dict[tuple[str, int], list[bytes]]:
    """Each partition's values in offset order, under the topic's name without ``prefix``."""
    partitions: dict[tuple[str, int], list[bytes]] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        partitions.setdefault((record.topic.removeprefix(prefix), record.partition), [])
        partitions[(record.topic.removeprefix(prefix), record.partition)].append(record.value)
    return partitions


async def test_replay_then_capture_then_replay_keeps_every_byte(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    lines, bodies = _recording()
    recording = tmp_path / "recorded.jsonl"
    recording.write_bytes(b"\n".join(lines) + b"\n")
    first, second = (f"t{uuid.uuid4().hex[:10]}." for _ in range(2))

    async with ingress_process(cli_env, kafka_bootstrap, first, tmp_path / "in1.log") as ingress:
        url = ingress.url + WEBHOOKS
        run = await _run(
            "replay", str(recording), "--url", url, "--token", TOKEN, "--speed", "0", env=cli_env
        )
    assert run.code == 1, run.stderr  # every body acked, but one line was skipped
    counts = orjson.loads(run.stdout)
    assert (counts["acked"], counts["sent"], counts["skipped_lines"]) == (5, 5, 1), run.stderr
    assert "line 3 skipped: not JSON" in run.stderr
    assert TOKEN not in run.stdout + run.stderr
    published = await _read(kafka_bootstrap, first, events=4, cdrs=1)
    assert Counter(record.value for record in published) == Counter(bodies)

    captured = tmp_path / "captured.jsonl"
    kafka_env = {**cli_env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    run = await _run(
        "capture",
        "--topic",
        f"{CALL_EVENTS},{CDRS}",
        "--out",
        str(captured),
        env={**kafka_env, "CALLSTREAM_TOPIC_PREFIX": first},
    )
    assert run.code == 0, run.stderr
    assert orjson.loads(run.stdout)["records"] == 5, run.stderr
    capture_lines = [orjson.loads(line) for line in captured.read_bytes().splitlines()]
    stamps = [line["timestamp_ms"] for line in capture_lines]
    assert stamps == sorted(stamps)
    assert Counter(line["body_text"].encode() for line in capture_lines) == Counter(bodies)

    async with ingress_process(cli_env, kafka_bootstrap, second, tmp_path / "in2.log") as ingress:
        run = await _run(
            "replay",
            str(captured),
            "--url",
            ingress.url + WEBHOOKS,
            "--concurrency",
            "1",
            env={**cli_env, "CALLSTREAM_WEBHOOK_TOKEN": TOKEN},
        )
    assert run.code == 0, run.stderr
    assert orjson.loads(run.stdout)["acked"] == 5
    again = await _read(kafka_bootstrap, second, events=4, cdrs=1)
    assert _by_partition(again, second) == _by_partition(published, first)

    # --since and --until pick records by timestamp: [third, last) leaves the first two and
    # the last out (timestamps may tie: the expected set is computed from them)
    since, until = stamps[2], stamps[-1]
    window = tmp_path / "window.jsonl"
    run = await _run(
        "capture",
        "--out",
        str(window),
        "--since",
        str(since),
        "--until",
        str(until),
        env={**kafka_env, "CALLSTREAM_TOPIC_PREFIX": first},
    )
    assert run.code == 0, run.stderr
    picked = [orjson.loads(line) for line in window.read_bytes().splitlines()]
    expected = [line for line in capture_lines if since <= line["timestamp_ms"] < until]
    key = lambda line: (line["topic"], line["partition"], line["offset"])  # noqa: E731
    assert sorted(map(key, picked)) == sorted(map(key, expected))


async def test_capture_of_a_topic_that_does_not_exist_says_so(
    kafka_bootstrap: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
    }
    run = await _run("capture", "--out", str(tmp_path / "none.jsonl"), env=env)
    assert run.code == 1
    assert "no such topic" in run.stderr
    run = await _run("capture", "--topic", "nope", "--out", str(tmp_path / "x.jsonl"), env=env)
    assert run.code == 2
    assert "unknown topic nope" in run.stderr
