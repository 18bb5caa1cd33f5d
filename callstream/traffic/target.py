"""Where the traffic commands post and with which token: the arguments `replay` and
`simulate` share, and their defaults (the local ingress of `make run` and its token)."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from callstream.settings import env_kafka_data_dir
from callstream.up import dev_token_file

if TYPE_CHECKING:
    from callstream.traffic.poster import PostSettings

DEFAULT_URL = "http://127.0.0.1:8080/webhooks/omicall"
TOKEN_ENV = "CALLSTREAM_WEBHOOK_TOKEN"  # noqa: S105 - a variable's name


class TargetError(ValueError):
    """No token to post with, or a URL that is not one (the command exits 2)."""


def resolve_token(given: str | None, env: Mapping[str, str]) -> str:
    """``--token``, else ``CALLSTREAM_WEBHOOK_TOKEN``, else the first of the ingress's
    ``CALLSTREAM_WEBHOOK_TOKENS``, else the file `callstream up` writes when those are unset."""
    if given and given.strip():
        return given.strip()
    if token := env.get(TOKEN_ENV, "").strip():
        return token
    if token := env.get("CALLSTREAM_WEBHOOK_TOKENS", "").split(",")[0].strip():
        return token
    path = dev_token_path(env)
    if path.is_file() and (token := path.read_text().strip()):
        return token
    raise TargetError(
        f"no webhook token: pass --token, set {TOKEN_ENV}, or run `callstream up` once "
        f"(it keeps one in {path})"
    )


def checked_url(text: str) -> str:
    """``text`` when it is an http(s) URL with a host; it is printed in errors, so a token
    belongs in ``--token``, never in it."""
    url = urlsplit(text)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise TargetError(f"--url {text!r} is not an http:// or https:// URL")
    return text


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--token``, ``--speed`` and ``--concurrency``."""
    parser.add_argument(
        "--url", default=DEFAULT_URL, help=f"the ingress's webhook route (default {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"the webhook token, sent in a header (default: env {TOKEN_ENV}, else the first of "
        "CALLSTREAM_WEBHOOK_TOKENS, else the .cache/webhook-token that `callstream up` writes)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="time scale: 2 posts twice as fast as recorded, 0 as fast as the answers allow "
        "(default 1)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight at most (default 16)"
    )


def post_settings(args: argparse.Namespace, env: Mapping[str, str]) -> PostSettings:
    """The poster's settings from :func:`add_target_arguments`' arguments, once something
    listens at the URL."""
    from callstream.traffic.poster import PostSettings  # aiohttp: loaded by the verbs that post

    token = resolve_token(args.token, env)
    try:
        settings = PostSettings(
            url=checked_url(args.url), token=token, speed=args.speed, concurrency=args.concurrency
        )
    except ValueError as bad:
        raise TargetError(str(bad)) from None
    check_reachable(settings.url)
    return settings


def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """TargetError when nothing listens at ``url``'s host and port: without it every body
    would be retried for seconds before counting as failed, however many there are."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise TargetError(
            f"cannot connect to {parts.hostname}:{port} ({reason}): is the ingress running? "
            "(`make run` starts one at 127.0.0.1:8080)"
        ) from None


def dev_token_path(env: Mapping[str, str]) -> Path:
    """The token file `callstream up` writes, as this environment places it."""
    return dev_token_file(env_kafka_data_dir(env))
