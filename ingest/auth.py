"""Who may post: webhook tokens, Standard Webhooks signatures, source allow-lists. Pure.

Tokens are compared in constant time over their SHA-256 digests, so neither a token's content
nor its length leaks through timing, and every configured token is always tried (rotation).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SIGNATURE_TOLERANCE_S = 300  # Standard Webhooks / Svix default: 5 minutes
SIGNATURE_VERSION = "v1"
# Unix seconds have 10 digits until the year 2286: a longer webhook-timestamp is no clock's, and
# hundreds of digits would overflow the float arithmetic of the tolerance check.
_TIMESTAMP_MAX_DIGITS = 15
TOKEN_HEADER = "X-Callstream-Token"  # noqa: S105 - a header name, not a secret


class AuthConfigError(ValueError):
    """A token, secret or network in the configuration is unusable."""


class SignatureError(Exception):
    """The request's Standard Webhooks signature is missing, stale or wrong."""


def _encode(text: str) -> bytes:
    """UTF-8 that never raises: a header's non-UTF-8 byte reaches us as a lone surrogate (aiohttp
    decodes with surrogateescape), and such a header must be refused (401), not crash (500)."""
    return text.encode("utf-8", "surrogatepass")


def _digest(value: str) -> bytes:
    return hashlib.sha256(_encode(value)).digest()


@dataclass(frozen=True)
class TokenSet:
    """The accepted webhook tokens (digests only: the tokens themselves are not kept)."""

    digests: tuple[bytes, ...]

    @classmethod
    def parse(cls, comma_separated: str) -> TokenSet:
        tokens = [token.strip() for token in comma_separated.split(",") if token.strip()]
        if not tokens:
            raise AuthConfigError("no webhook token configured (CALLSTREAM_WEBHOOK_TOKENS)")
        short = [t for t in tokens if len(t) < 16]
        if short:
            raise AuthConfigError(
                f"{len(short)} webhook token(s) shorter than 16 characters: use long random tokens"
            )
        return cls(tuple(_digest(token) for token in tokens))

    def matches(self, candidate: str | None) -> bool:
        """True when ``candidate`` is one of the tokens; constant time, every token tried."""
        if candidate is None:
            return False
        probe = _digest(candidate)
        found = False
        for digest in self.digests:
            found |= hmac.compare_digest(probe, digest)
        return found

    def __repr__(self) -> str:
        return f"TokenSet(<{len(self.digests)} tokens>)"


def parse_signing_secret(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>`` (a bare base64 works too)."""
    encoded = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise AuthConfigError("CALLSTREAM_WEBHOOK_SIGNING_SECRET is not whsec_<base64>") from None
    if len(key) < 16:
        raise AuthConfigError("CALLSTREAM_WEBHOOK_SIGNING_SECRET is shorter than 16 bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``: what a signing relay sends."""
    mac = hmac.new(key, _encode(f"{msg_id}.{timestamp}.") + body, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode()}"


def verify_signature(
    key: bytes,
    msg_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: int = SIGNATURE_TOLERANCE_S,
) -> None:
    """Check the ``webhook-id``/``-timestamp``/``-signature`` headers over the raw body.

    Several space-separated signatures may be sent (secret rotation): one valid one suffices.
    """
    if not msg_id or not timestamp or not signatures:
        raise SignatureError("webhook-id, webhook-timestamp and webhook-signature are required")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise SignatureError("webhook-timestamp is not an integer")
    if len(timestamp) > _TIMESTAMP_MAX_DIGITS or abs(now - int(timestamp)) > tolerance_s:
        raise SignatureError(f"webhook-timestamp is more than {tolerance_s} s from now")
    expected = sign(key, msg_id, timestamp, body).encode()
    found = False
    for candidate in signatures.split():
        found |= hmac.compare_digest(_encode(candidate), expected)
    if not found:
        raise SignatureError("no webhook-signature matches")


def parse_networks(comma_separated: str, variable: str) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) from a comma-separated setting."""
    networks = []
    for item in comma_separated.split(","):
        if not item.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise AuthConfigError(f"{variable}: {item.strip()!r} is not a CIDR") from None
    return tuple(networks)


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_any(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]
) -> IPAddress | None:
    """The client's address: the peer, or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For entry that is not itself a trusted proxy."""
    address = _address(peer) if peer else None
    if address is None or not forwarded_for or not _in_any(address, trusted_proxies):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # a garbled chain: trust nothing in it
        if not _in_any(hop_address, trusted_proxies):
            return hop_address
    return address


def source_allowed(address: IPAddress | None, allowed: Sequence[IPNetwork]) -> bool:
    """No allow-list allows everyone; otherwise the address must be inside one network."""
    if not allowed:
        return True
    return address is not None and _in_any(address, allowed)
