"""Run the ``callstream`` command as a user would: a subprocess, exit code and output."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def callstream(*args: str, env: dict[str, str], timeout: float = 120.0) -> Run:
    completed = subprocess.run(
        [sys.executable, "-m", "callstream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)
