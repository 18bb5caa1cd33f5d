"""Read a request body under a size limit, whatever Content-Length claims."""

from __future__ import annotations

from aiohttp import web


class BodyTooLarge(Exception):
    """The body exceeds the limit (said by Content-Length, or found while reading)."""


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than ``limit`` bytes are announced or
    read; memory stays bounded by ``limit`` even when Content-Length lies or is absent."""
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise BodyTooLarge(f"Content-Length {declared} exceeds {limit} bytes")
        # The HTTP parser delivers at most Content-Length bytes: one read, no chunk loop.
        return await request.read()
    chunks = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        chunks += chunk
        if len(chunks) > limit:
            raise BodyTooLarge(f"body exceeds {limit} bytes")
    return bytes(chunks)
