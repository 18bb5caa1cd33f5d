"""The ingress's settings from the environment."""

from __future__ import annotations

import base64

import pytest

from callstream.ingest.auth import AuthConfigError
from callstream.ingest.settings import IngressSettings
from callstream.settings import SettingsError

TOKEN = "t" * 24


def test_defaults() -> None:
    settings = IngressSettings.from_env({"CALLSTREAM_WEBHOOK_TOKENS": TOKEN})
    assert settings.tokens.matches(TOKEN)
    assert settings.signing_key is None
    assert settings.allowed_networks == ()
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topic_prefix == ""
    assert settings.max_body_bytes == 64 * 1024
    assert settings.send_timeout_s == 5.0
    assert settings.log_requests is False
    assert (settings.header_timeout_s, settings.body_timeout_s) == (10.0, 30.0)
    assert (settings.keepalive_timeout_s, settings.write_timeout_s) == (75.0, 30.0)
    assert settings.max_connections == 1000
    assert TOKEN not in repr(settings)


def test_everything_set() -> None:
    key = b"k" * 32
    settings = IngressSettings.from_env(
        {
            "CALLSTREAM_WEBHOOK_TOKENS": f"{TOKEN},{'u' * 20}",
            "CALLSTREAM_WEBHOOK_SIGNING_SECRET": "whsec_" + base64.b64encode(key).decode(),
            "CALLSTREAM_ALLOWED_CIDRS": "203.0.113.0/24",
            "CALLSTREAM_TRUSTED_PROXIES": "10.0.0.1",
            "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
            "CALLSTREAM_TOPIC_PREFIX": "prod.",
            "CALLSTREAM_MAX_BODY_BYTES": "2048",
            "CALLSTREAM_SEND_TIMEOUT": "1.5",
            "CALLSTREAM_LOG_REQUESTS": "yes",
            "CALLSTREAM_LOG_LEVEL": "debug",
            "CALLSTREAM_HEADER_TIMEOUT": "2.5",
            "CALLSTREAM_BODY_TIMEOUT": "7",
            "CALLSTREAM_KEEPALIVE_TIMEOUT": "30",
            "CALLSTREAM_WRITE_TIMEOUT": "4",
            "CALLSTREAM_MAX_CONNECTIONS": "64",
        }
    )
    assert settings.tokens.matches("u" * 20)
    assert settings.signing_key == key
    assert [str(n) for n in settings.allowed_networks] == ["203.0.113.0/24"]
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.1/32"]
    assert settings.bootstrap_servers == "k1:9092,k2:9092"
    assert settings.topic_prefix == "prod."
    assert settings.max_body_bytes == 2048
    assert settings.send_timeout_s == 1.5
    assert settings.log_requests is True
    assert settings.log_level == "DEBUG"
    assert (settings.header_timeout_s, settings.body_timeout_s) == (2.5, 7.0)
    assert (settings.keepalive_timeout_s, settings.write_timeout_s) == (30.0, 4.0)
    assert settings.max_connections == 64
    assert "k" * 32 not in repr(settings)


@pytest.mark.parametrize(
    ("env", "error", "message"),
    [
        ({}, AuthConfigError, "no webhook token configured"),
        ({"CALLSTREAM_ALLOWED_CIDRS": "everyone"}, AuthConfigError, "not a CIDR"),
        ({"CALLSTREAM_MAX_BODY_BYTES": "10"}, SettingsError, "at least 1024"),
        ({"CALLSTREAM_SEND_TIMEOUT": "0"}, SettingsError, "positive"),
        ({"CALLSTREAM_HEADER_TIMEOUT": "0"}, SettingsError, "HEADER_TIMEOUT must be positive"),
        ({"CALLSTREAM_BODY_TIMEOUT": "-1"}, SettingsError, "BODY_TIMEOUT must be positive"),
        ({"CALLSTREAM_WRITE_TIMEOUT": "0"}, SettingsError, "WRITE_TIMEOUT must be positive"),
        ({"CALLSTREAM_KEEPALIVE_TIMEOUT": "0"}, SettingsError, "KEEPALIVE_TIMEOUT must be pos"),
        # NaN passes "<= 0" and, as a timer's delay, breaks the order of every timer of the loop
        ({"CALLSTREAM_HEADER_TIMEOUT": "nan"}, SettingsError, "HEADER_TIMEOUT='nan' is not a fin"),
        ({"CALLSTREAM_SEND_TIMEOUT": "NaN"}, SettingsError, "SEND_TIMEOUT='NaN' is not a finite"),
        ({"CALLSTREAM_BODY_TIMEOUT": "inf"}, SettingsError, "BODY_TIMEOUT='inf' is not a finite"),
        ({"CALLSTREAM_MAX_CONNECTIONS": "0"}, SettingsError, "at least 1"),
        ({"CALLSTREAM_MAX_CONNECTIONS": "many"}, SettingsError, "not an integer"),
        ({"CALLSTREAM_LOG_REQUESTS": "maybe"}, SettingsError, "not a boolean"),
    ],
)
def test_unusable_settings_are_refused(
    env: dict[str, str], error: type[Exception], message: str
) -> None:
    tokens = {} if not env else {"CALLSTREAM_WEBHOOK_TOKENS": TOKEN}
    with pytest.raises(error, match=message):
        IngressSettings.from_env({**tokens, **env})
