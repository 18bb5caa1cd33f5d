"""Read a request body under a size limit, whatever Content-Length claims."""

from __future__ import annotations

import asyncio

from aiohttp import web


class BodyTooLarge(Exception):
    """The body exceeds the limit (said by Content-Length, or found while reading)."""


class BodyUnreadable(Exception):
    """The body could not be read (a Content-Encoding it does not match, or cut short): answer,
    then close the connection."""


class BodyTimeout(Exception):
    """The body did not arrive in time (a slow or stalled sender): answer 408, then close."""


async def read_limited(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than ``limit`` bytes are announced or
    read; memory stays bounded by ``limit`` even when Content-Length lies or is absent. A gzip
    or deflate body is decompressed as it is read, and the limit holds for what comes out.
    BodyTimeout when the whole body took longer than ``timeout_s``, however it trickled."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    except web.HTTPRequestEntityTooLarge:  # aiohttp's own limit, on the decompressed bytes
        raise BodyTooLarge(f"body exceeds {limit} bytes once decompressed") from None
    except web.RequestPayloadError as unreadable:
        # Ended here: after the response aiohttp would read the failed stream again, and log
        # its error as unhandled. The connection must close: the rest of the body is unparsed.
        request.content.feed_eof()
        raise BodyUnreadable(str(unreadable).replace("\n", " ").strip()) from None


async def _read(request: web.Request, limit: int) -> bytes:
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
