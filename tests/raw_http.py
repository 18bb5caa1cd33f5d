"""HTTP/1.1 over a bare socket, for tests that need one connection's bytes and timing: slow
senders, idle connections, pipelining, refused connections."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

DEADLINE_S = 10.0


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    """One request with Host and, for a body, Content-Length; ``headers`` use _ for -."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, body)


async def exchange(port: int, raw_request: bytes, close_within_s: float = DEADLINE_S) -> bytes:
    """Send ``raw_request``, bytes as they are, on a new connection: what the server answers
    until it closes the connection, which it must do within ``close_within_s``."""
    reader, writer = await connect(port)
    try:
        writer.write(raw_request)
        await writer.drain()
        return await read_until_closed(reader, close_within_s)
    finally:
        await close(writer)


async def read_response(reader: asyncio.StreamReader, within_s: float = DEADLINE_S) -> RawResponse:
    """The next response on the connection (its body by Content-Length)."""
    async with asyncio.timeout(within_s):
        head = await reader.readuntil(b"\r\n\r\n")
        response = parse_response(head)
        length = int(response.headers.get("content-length", "0"))
        return RawResponse(response.status, response.headers, await reader.readexactly(length))


async def read_until_closed(reader: asyncio.StreamReader, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection; AssertionError if it is
    still open after ``within_s``."""
    received = bytearray()
    try:
        async with asyncio.timeout(within_s):
            while chunk := await _read_some(reader):
                received += chunk
    except TimeoutError:
        raise AssertionError(
            f"the server kept the connection open for {within_s} s (got {bytes(received)!r})"
        ) from None
    return bytes(received)


async def still_open_after(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server neither sent anything nor closed the connection for ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            await _read_some(reader)
    except TimeoutError:
        return True
    return False


async def _read_some(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(65536)
    except ConnectionError:  # a reset is a close too
        return b""


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """Send ``data`` a byte at a time, one every ``every_s``, until sent or the server closes."""
    with contextlib.suppress(ConnectionError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
