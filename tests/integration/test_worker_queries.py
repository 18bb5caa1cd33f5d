"""The query API of two real workers sharing the partitions: either answers every call as the
pure fold says (the one that does not own it asks the one that does), and both show the whole
call centre's calls in progress, in ``/calls/live`` and on their wallboards."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from callstream.processors.routing import ANSWERED_BY
from callstream.schemas.calls import CallState
from tests.callstate_truth import describe, folded, state_mismatches
from tests.integration.ingress_support import ingress_settings, running_ingress
from tests.integration.worker_support import Worker, call_events, post_all, worker_process
from tests.kafka_support import wait_while_lacking
from tests.sse_support import next_event

Answer = tuple[int, dict[str, str], Any]


async def get(session: aiohttp.ClientSession, worker: Worker, path: str) -> Answer:
    async with session.get(f"http://127.0.0.1:{worker.web_port}{path}") as response:
        body = await response.read()
        headers = {name: value for name, value in response.headers.items() if name.startswith("X-")}
        return response.status, headers, msgspec.json.decode(body) if body else None


async def wallboard(session: aiohttp.ClientSession, worker: Worker) -> Any:
    """The board of the worker's wallboard stream: its first event, a snapshot."""
    url = f"http://127.0.0.1:{worker.web_port}/wallboard/events"
    async with session.get(url) as response:
        _, kind, data = await next_event(response)
    assert kind == "snapshot"
    return data["board"]


async def test_two_workers_answer_every_call_alike(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = ingress_settings(kafka_bootstrap)
    prefix, app_id = settings.topic_prefix, f"{settings.topic_prefix}worker"
    calls = [f"q-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(24)]
    ringing = calls[:6]  # only their ringing event: in progress
    async with (
        running_ingress(settings) as ingress,
        aiohttp.ClientSession() as session,
    ):
        with (
            worker_process(kafka_bootstrap, prefix, tmp_path, app_id=app_id, name="a") as a,
            worker_process(kafka_bootstrap, prefix, tmp_path, app_id=app_id, name="b") as b,
        ):
            sent = {call: call_events(call)[: 1 if call in ringing else 4] for call in calls}
            await asyncio.gather(*(post_all(ingress, events) for events in sent.values()))
            truth = {call: folded(events) for call, events in sent.items()}
            answers: dict[int, dict[str, Answer]] = {}

            async def unanswered() -> str | None:
                """What either worker does not answer as the fold says yet."""
                for worker in (a, b):
                    answers[worker.web_port] = {
                        call: await get(session, worker, f"/calls/{call}") for call in calls
                    }
                    seen = {
                        call: msgspec.convert(body, CallState)
                        for call, (status, _, body) in answers[worker.web_port].items()
                        if status == 200
                    }
                    lack = describe(state_mismatches(truth, seen))
                    if lack is not None:
                        return f"worker on port {worker.web_port}: {lack}"
                return None

            await wait_while_lacking(unanswered, "/calls/{id} from both workers")
            by_a, by_b = answers[a.web_port], answers[b.web_port]
            assert by_a == by_b
            # Both own some calls: each answered some of them through the other.
            owners = {headers[ANSWERED_BY] for _, headers, _ in by_a.values()}
            assert owners == {f"http://127.0.0.1:{a.web_port}", f"http://127.0.0.1:{b.web_port}"}

            for worker in (a, b):
                status, _, body = await get(session, worker, "/calls/never-heard-of")
                assert (status, body["error"]) == (404, "not_found")

            async def live_differs() -> str | None:
                views = [await get(session, worker, "/calls/live") for worker in (a, b)]
                statuses = [status for status, _, _ in views]
                if statuses != [200, 200]:  # 503 while a live view still reads live-calls
                    return f"answered {statuses}: {[body for _, _, body in views]}"
                ids = [sorted(c["call_id"] for c in body["calls"]) for _, _, body in views]
                if ids != [sorted(ringing)] * 2:
                    return f"live calls {ids}"
                return None

            await wait_while_lacking(live_differs, "both live views hold the ringing calls")
            status, _, body = await get(session, a, "/calls/live")
            assert body["totals"]["ringing"] == len(ringing)

            for worker in (a, b):
                status, _, body = await get(session, worker, "/metrics/hotline?window=1h")
                assert (status, body) == (200, [])

            # Each worker's wallboard: the whole centre's calls in progress, not its partitions'.
            boards = [await wallboard(session, worker) for worker in (a, b)]
            for board in boards:
                assert sorted(board["calls"]) == sorted(ringing)
                assert board["tiles"]["all:all"]["ringing"] == len(ringing)
            assert boards[0]["tiles"] == boards[1]["tiles"]
