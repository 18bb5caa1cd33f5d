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


class ClientGone(Exception):
    """The client closed the connection before its body was read: nobody to answer."""


async def read_limited(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than ``limit`` bytes are announced or
    read; memory stays bounded by ``limit`` even when Content-Length lies or is absent. A gzip
    or deflate body is decompressed as it is read, and the limit holds for what comes out.
    BodyTimeout when the whole body took longer than ``timeout_s``, however it trickled.

    After BodyTooLarge, BodyTimeout or BodyUnreadable the rest of the body stays unread: answer
    with ``Connection: close``."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(request, limit)
    except TimeoutError:
        _abandon(request)
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    except BodyTooLarge:
        _abandon(request)
        raise
    except web.HTTPRequestEntityTooLarge:  # aiohttp's own limit, on the decompressed bytes
        _abandon(request)
        raise BodyTooLarge(f"body exceeds {limit} bytes once decompressed") from None
    except web.RequestPayloadError as unreadable:
        _abandon(request)
        raise BodyUnreadable(str(unreadable).replace("\n", " ").strip()) from None
    except ConnectionError:  # aiohttp's "Connection lost", or the socket's own reset
        raise ClientGone("the client closed the connection during its body") from None


def abandon_unread(request: web.Request) -> bool:
    """End the body stream of a request answered without reading its body (refused before):
    True when there was one, and the connection must then close. Otherwise aiohttp reads that
    body after the response, and a body it cannot decode (a Content-Encoding it does not match,
    broken chunks) is logged as an unhandled exception, with a traceback, for any client."""
    if request.content.is_eof():
        return False
    _abandon(request)
    return True


def _abandon(request: web.Request) -> None:
    """End the body stream here. Otherwise, after the response, aiohttp reads the failed stream
    again and logs its error as unhandled, or reads and discards the unread rest of the body
    for up to 10 s ("lingering") before it closes the connection."""
    request.content.feed_eof()


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
