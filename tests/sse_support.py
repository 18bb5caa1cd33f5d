"""Reading Server-Sent Events (the wallboard's stream) in tests."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import ClientResponse


async def next_event(response: ClientResponse, deadline_s: float = 5) -> tuple[str, str, Any]:
    """The next event's id, type and JSON data, skipping fields alone (``retry``) and
    comments (keep-alives); raises at the deadline."""
    while True:
        block = await asyncio.wait_for(response.content.readuntil(b"\n\n"), deadline_s)
        fields = dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)
        if "event" in fields:
            return fields["id"], fields["event"], orjson.loads(fields["data"])
