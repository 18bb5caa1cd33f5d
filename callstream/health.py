"""Wait for an HTTP health endpoint: used by `callstream up` and the tests."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URLs
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_http_ok(
    url: str,
    deadline_s: float,
    interval_s: float = 0.1,
    *,
    alive: Callable[[], bool] = lambda: True,
) -> bool:
    """Poll ``url`` until it answers 2xx (True), or ``deadline_s`` seconds pass or ``alive``
    says the server is gone (False: a process that exited will not answer)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and alive():
        if http_ok(url):
            return True
        time.sleep(interval_s)
    return False
