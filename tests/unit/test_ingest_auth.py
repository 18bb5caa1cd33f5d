"""Tokens, Standard Webhooks signatures, and source addresses behind proxies."""

from __future__ import annotations

import base64
import ipaddress

import pytest

from callstream.ingest.auth import (
    AuthConfigError,
    SignatureError,
    TokenSet,
    client_address,
    parse_networks,
    parse_signing_secret,
    sign,
    source_allowed,
    verify_signature,
)

OLD = "old-token-0123456789abcdef"
NEW = "new-token-fedcba9876543210"
KEY = b"k" * 32
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def test_every_configured_token_is_accepted_and_nothing_else() -> None:
    tokens = TokenSet.parse(f" {OLD} , {NEW} ,")
    assert tokens.matches(OLD)
    assert tokens.matches(NEW)
    assert not tokens.matches(OLD[:-1])
    assert not tokens.matches(OLD + "x")
    assert not tokens.matches("")
    assert not tokens.matches(None)


def test_a_token_with_a_non_utf8_byte_is_refused_not_an_error() -> None:
    # aiohttp decodes a header's non-UTF-8 byte as a lone surrogate (surrogateescape).
    tokens = TokenSet.parse(OLD)
    assert not tokens.matches("\udcff")
    assert not tokens.matches(OLD + "\udcff")
    assert not tokens.matches("\ud800")


def test_token_set_never_shows_its_tokens() -> None:
    tokens = TokenSet.parse(OLD)
    assert OLD not in repr(tokens)
    assert OLD.encode() not in b"".join(tokens.digests)


@pytest.mark.parametrize("value", ["", " , ", "short"])
def test_missing_or_weak_tokens_refuse_to_configure(value: str) -> None:
    with pytest.raises(AuthConfigError):
        TokenSet.parse(value)


def test_signing_secret_forms() -> None:
    assert parse_signing_secret(SECRET) == KEY
    assert parse_signing_secret(base64.b64encode(KEY).decode()) == KEY
    with pytest.raises(AuthConfigError, match="whsec_"):
        parse_signing_secret("whsec_not base64!")
    with pytest.raises(AuthConfigError, match="shorter"):
        parse_signing_secret("whsec_" + base64.b64encode(b"tiny").decode())


def test_a_valid_signature_passes_and_any_change_fails() -> None:
    body = b'{"call_uuid": "x"}'
    signature = sign(KEY, "msg_1", "1700000000", body)
    verify_signature(KEY, "msg_1", "1700000000", signature, body, now=1700000100)
    for msg_id, timestamp, sent_body in (
        ("msg_2", "1700000000", body),
        ("msg_1", "1700000001", body),
        ("msg_1", "1700000000", body + b" "),
    ):
        with pytest.raises(SignatureError, match="no webhook-signature matches"):
            verify_signature(KEY, msg_id, timestamp, signature, sent_body, now=1700000000)


def test_rotation_one_of_several_signatures_suffices() -> None:
    body = b"{}"
    good = sign(KEY, "m", "1700000000", body)
    other = sign(b"o" * 32, "m", "1700000000", body)
    verify_signature(KEY, "m", "1700000000", f"{other} {good}", body, now=1700000000)


@pytest.mark.parametrize(
    ("now", "ok"), [(1700000300, True), (1700000301, False), (1699999699, False)]
)
def test_timestamps_outside_five_minutes_are_refused(now: int, ok: bool) -> None:
    body = b"{}"
    signature = sign(KEY, "m", "1700000000", body)
    if ok:
        verify_signature(KEY, "m", "1700000000", signature, body, now=now)
    else:
        with pytest.raises(SignatureError, match="300 s"):
            verify_signature(KEY, "m", "1700000000", signature, body, now=now)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "signature", "message"),
    [
        (None, "1", "v1,x", "required"),
        ("m", None, "v1,x", "required"),
        ("m", "1", None, "required"),
        ("m", "soon", "v1,x", "not an integer"),
        ("m", "+1700000000", "v1,x", "not an integer"),
        ("m", "9" * 400, "v1,x", "300 s"),  # an int, but float(now) - it overflowed
        ("m", "1700000000\udcff", "v1,x", "not an integer"),
        ("m\udcff", "1700000000", "v1,x", "no webhook-signature matches"),
        ("m", "1700000000", "v1,\udcff", "no webhook-signature matches"),
    ],
)
def test_missing_or_garbled_signature_headers(
    msg_id: str | None, timestamp: str | None, signature: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_signature(KEY, msg_id, timestamp, signature, b"{}", now=1700000000.0)


PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1", "CALLSTREAM_TRUSTED_PROXIES")


def test_forwarded_for_is_honoured_only_from_a_trusted_proxy() -> None:
    ip = ipaddress.ip_address
    assert client_address("10.1.2.3", "203.0.113.9", PROXIES) == ip("203.0.113.9")
    assert client_address("10.1.2.3", "198.51.100.1, 203.0.113.9, 10.9.9.9", PROXIES) == ip(
        "203.0.113.9"
    )
    # An untrusted peer's X-Forwarded-For is ignored: it could say anything.
    assert client_address("203.0.113.50", "10.0.0.1", PROXIES) == ip("203.0.113.50")
    assert client_address("10.1.2.3", "garbage", PROXIES) is None
    assert client_address("10.1.2.3", None, PROXIES) == ip("10.1.2.3")
    assert client_address(None, "203.0.113.9", PROXIES) is None


def test_allow_list() -> None:
    allowed = parse_networks("203.0.113.0/24,2001:db8::/32", "CALLSTREAM_ALLOWED_CIDRS")
    ip = ipaddress.ip_address
    assert source_allowed(ip("203.0.113.7"), allowed)
    assert source_allowed(ip("2001:db8::1"), allowed)
    assert not source_allowed(ip("198.51.100.7"), allowed)
    assert not source_allowed(None, allowed)
    assert source_allowed(ip("198.51.100.7"), ())
    with pytest.raises(AuthConfigError, match="not a CIDR"):
        parse_networks("10.0.0.0/8,nonsense", "CALLSTREAM_ALLOWED_CIDRS")
