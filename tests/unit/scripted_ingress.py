"""A tiny scripted ingress on 127.0.0.1 for the traffic commands' tests: it answers each
body's n-th attempt as the test says and records what it was sent."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.ingress_support import wait_until

TOKEN = "poster-test-token-0123456789"  # noqa: S105 - a test token
HANG = -1  # an answer that never comes (until the server closes)

# What the scripted ingress answers a body's n-th attempt (from 1): a status, a status with
# headers, or HANG.
Answer = int | tuple[int, dict[str, str]]
Script = Callable[[bytes, int], Answer]


@dataclass(frozen=True)
class Hit:
    at: float
    body: bytes
    path: str
    token: str | None
    content_type: str
    request_id: str | None


@dataclass
class Scripted:
    url: str
    hits: list[Hit] = field(default_factory=list)
    most_in_flight: int = 0

    def bodies(self) -> list[bytes]:
        return [hit.body for hit in self.hits]


@asynccontextmanager
async def scripted_ingress(script: Script, hold_s: float = 0.0) -> AsyncIterator[Scripted]:
    attempts: Counter[bytes] = Counter()
    closing = asyncio.Event()
    in_flight = 0
    served: Scripted | None = None

    async def receive(request: web.Request) -> web.Response:
        nonlocal in_flight
        assert served is not None
        body = await request.read()
        served.hits.append(
            Hit(
                time.monotonic(),
                body,
                request.path_qs,
                request.headers.get("X-Callstream-Token"),
                request.content_type,
                request.headers.get("X-Request-Id"),
            )
        )
        attempts[body] += 1
        in_flight += 1
        served.most_in_flight = max(served.most_in_flight, in_flight)
        try:
            answer = script(body, attempts[body])
            if answer == HANG:
                await closing.wait()
            await asyncio.sleep(hold_s)
        finally:
            in_flight -= 1
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.json_response({"status": status}, status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/webhooks/omicall", receive)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    served = Scripted(str(server.make_url("/webhooks/omicall")))
    try:
        yield served
    finally:
        closing.set()
        await server.close()


def always(answer: Answer) -> Script:
    return lambda _body, _attempt: answer


def first(answers: list[Answer], then: Answer = 200) -> Script:
    """Each body's attempts answered from ``answers``, then ``then``."""
    return lambda _body, attempt: answers[attempt - 1] if attempt <= len(answers) else then


def _ctrl_c_as_in_a_terminal() -> None:
    """Ctrl-C at its default, as for a terminal's foreground process: a test run from a
    background job (bash ignores SIGINT for those) would hand it down ignored, and Python then
    keeps it ignored, so the SIGINT below did nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def interrupted(*args: str, after_hits: int = 2) -> tuple[int | None, bytes, bytes]:
    """``callstream *args --url <an ingress that never answers>``, sent SIGINT (Ctrl-C) once
    ``after_hits`` requests reached it: its exit code, stdout and stderr."""
    async with scripted_ingress(always(HANG)) as ingress:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "callstream", *args, "--url", ingress.url),
            env={**os.environ, "CI": "true"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_ctrl_c_as_in_a_terminal,
        )
        try:
            await wait_until(lambda: len(ingress.hits) == after_hits, "the requests", deadline_s=60)
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return process.returncode, out, err
