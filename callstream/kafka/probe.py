"""A Kafka Metadata request over a plain socket: is a broker there and does it answer?

Used by the launcher's readiness wait and by ``status``. Synchronous and quiet on purpose: a
client library would log every refused connection while the broker boots. Metadata v4 is the
oldest version Kafka 4 still serves (KIP-896) and is understood by every broker since 1.0.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

METADATA_API_KEY = 3
METADATA_VERSION = 4
_CLIENT_ID = b"callstream-probe"


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int


def encode_metadata_request(correlation_id: int) -> bytes:
    """A size-prefixed Metadata v4 request for no topics (brokers only)."""
    header = struct.pack(
        ">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(_CLIENT_ID)
    )
    body = struct.pack(">i?", 0, False)  # an empty topic list; no auto-creation
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def decode_metadata_brokers(response: bytes, correlation_id: int) -> list[BrokerInfo]:
    """The broker list of a Metadata v4 response (without its size prefix)."""
    (got_correlation, _throttle, count) = struct.unpack_from(">iii", response, 0)
    if got_correlation != correlation_id:
        raise ValueError(f"correlation id {got_correlation}, expected {correlation_id}")
    offset = 12
    brokers = []
    for _ in range(count):
        (node_id, host_len) = struct.unpack_from(">ih", response, offset)
        offset += 6
        host = response[offset : offset + host_len].decode()
        offset += host_len
        (port, rack_len) = struct.unpack_from(">ih", response, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append(BrokerInfo(node_id, host, port))
    return brokers


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[BrokerInfo]:
    """Ask ``host:port`` for its brokers; raises OSError/ValueError when it does not answer."""
    correlation_id = 7
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode_metadata_request(correlation_id))
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        return decode_metadata_brokers(_read_exactly(sock, size), correlation_id)


def broker_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Kafka broker at ``host:port`` answers a metadata request listing a broker."""
    try:
        return bool(metadata_brokers(host, port, timeout))
    except (OSError, ValueError, struct.error):
        return False
