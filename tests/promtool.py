"""Prometheus's own linter over a /metrics exposition (`promtool check metrics`): required in CI
(.ci/run installs Debian's prometheus), skipped elsewhere when missing."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


async def assert_promtool_passes(exposition: bytes) -> None:
    """``promtool check metrics`` finds no problem, not even a lint warning."""
    checked = await asyncio.to_thread(
        subprocess.run,
        [promtool(), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    assert checked.stdout.strip() == b"", checked.stdout.decode()
