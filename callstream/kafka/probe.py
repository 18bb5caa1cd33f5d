"""A Kafka Metadata request over a plain socket: is a broker there and does it answer?

Used by the launcher's readiness wait and by ``status``. Synchronous and quiet on purpose: a
client library would log every refused connection while the broker boots. Metadata v4 is the
oldest version Kafka 4 still serves (KIP-896) and is understood by every broker since 1.0.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass

METADATA_API_KEY = 3
METADATA_VERSION = 4
_CLIENT_ID = b"callstream-probe"


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class Metadata:
    """A broker's answer: the brokers it knows, and the partition count of each topic asked
    for that it knows without error (a topic it has not heard of yet is absent)."""

    brokers: list[BrokerInfo]
    topics: dict[str, int]


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def encode_metadata_request(correlation_id: int, topics: Sequence[str] = ()) -> bytes:
    """A size-prefixed Metadata v4 request for ``topics`` (none: brokers only)."""
    header = struct.pack(
        ">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(_CLIENT_ID)
    )
    body = struct.pack(">i", len(topics)) + b"".join(_string(name) for name in topics)
    body += struct.pack(">?", False)  # no auto-creation
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def decode_metadata(response: bytes, correlation_id: int) -> Metadata:
    """A Metadata v4 response (without its size prefix)."""
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
    (cluster_id_len,) = struct.unpack_from(">h", response, offset)
    offset += 2 + max(cluster_id_len, 0) + 4  # the cluster id, then the controller id
    (count,) = struct.unpack_from(">i", response, offset)
    offset += 4
    topics: dict[str, int] = {}
    for _ in range(count):
        (error_code, name_len) = struct.unpack_from(">hh", response, offset)
        offset += 4
        name = response[offset : offset + name_len].decode()
        offset += name_len + 1  # is_internal
        (partitions,) = struct.unpack_from(">i", response, offset)
        offset += 4
        for _ in range(partitions):
            offset += 10  # error code, partition index, leader id
            for _nodes in range(2):  # replicas, in-sync replicas
                (nodes,) = struct.unpack_from(">i", response, offset)
                offset += 4 + 4 * nodes
        if error_code == 0:
            topics[name] = partitions
    return Metadata(brokers, topics)


def decode_metadata_brokers(response: bytes, correlation_id: int) -> list[BrokerInfo]:
    """The broker list of a Metadata v4 response (without its size prefix)."""
    return decode_metadata(response, correlation_id).brokers


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def metadata(host: str, port: int, topics: Sequence[str] = (), timeout: float = 2.0) -> Metadata:
    """Ask ``host:port`` for its brokers and ``topics``; raises OSError/ValueError when it does
    not answer."""
    correlation_id = 7
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode_metadata_request(correlation_id, topics))
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        return decode_metadata(_read_exactly(sock, size), correlation_id)


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[BrokerInfo]:
    """Ask ``host:port`` for its brokers; raises OSError/ValueError when it does not answer."""
    return metadata(host, port, timeout=timeout).brokers


def broker_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Kafka broker at ``host:port`` answers a metadata request listing a broker."""
    try:
        return bool(metadata_brokers(host, port, timeout))
    except (OSError, ValueError, struct.error):
        return False


# DescribeQuorum (KIP-595) asks a controller about the metadata log's quorum; v0 is a flexible
# version (compact strings and arrays, tagged fields), served by every KRaft controller.
DESCRIBE_QUORUM_API_KEY = 55
DESCRIBE_QUORUM_VERSION = 0
METADATA_TOPIC = b"__cluster_metadata"


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _skip_tagged_fields(data: bytes, offset: int) -> int:
    count, offset = _read_uvarint(data, offset)
    for _ in range(count):
        _tag, offset = _read_uvarint(data, offset)
        size, offset = _read_uvarint(data, offset)
        offset += size
    return offset


def encode_describe_quorum_request(correlation_id: int) -> bytes:
    """A size-prefixed DescribeQuorum v0 request for the metadata log's only partition."""
    header = struct.pack(
        ">hhih", DESCRIBE_QUORUM_API_KEY, DESCRIBE_QUORUM_VERSION, correlation_id, len(_CLIENT_ID)
    )
    header += _CLIENT_ID + _uvarint(0)  # request header v2: no tagged fields
    partition = struct.pack(">i", 0) + _uvarint(0)
    topic = _uvarint(len(METADATA_TOPIC) + 1) + METADATA_TOPIC + _uvarint(2) + partition
    body = _uvarint(2) + topic + _uvarint(0) + _uvarint(0)
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def decode_quorum_leader(response: bytes, correlation_id: int) -> int | None:
    """The leader's node id from a DescribeQuorum v0 response (without its size prefix); None
    while the quorum has no leader. Raises ValueError for an error answer."""
    (got_correlation,) = struct.unpack_from(">i", response, 0)
    if got_correlation != correlation_id:
        raise ValueError(f"correlation id {got_correlation}, expected {correlation_id}")
    offset = _skip_tagged_fields(response, 4)  # response header v1
    (error_code,) = struct.unpack_from(">h", response, offset)
    if error_code:
        raise ValueError(f"DescribeQuorum error code {error_code}")
    topics, offset = _read_uvarint(response, offset + 2)
    if topics < 2:
        raise ValueError("DescribeQuorum answered no topic")
    name_length, offset = _read_uvarint(response, offset)
    partitions, offset = _read_uvarint(response, offset + name_length - 1)
    if partitions < 2:
        raise ValueError("DescribeQuorum answered no partition")
    (_index, partition_error, leader_id) = struct.unpack_from(">ihi", response, offset)
    if partition_error:
        raise ValueError(f"DescribeQuorum partition error code {partition_error}")
    return leader_id if leader_id >= 0 else None


def quorum_leader(host: str, port: int, timeout: float = 2.0) -> int | None:
    """The metadata quorum's leader as the controller at ``host:port`` knows it; None when it
    knows none or does not answer."""
    correlation_id = 11
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(encode_describe_quorum_request(correlation_id))
            (size,) = struct.unpack(">i", _read_exactly(sock, 4))
            return decode_quorum_leader(_read_exactly(sock, size), correlation_id)
    except (OSError, ValueError, struct.error, IndexError):
        return None
