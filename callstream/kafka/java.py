"""Find a Java runtime new enough for the pinned broker (Kafka 4 needs Java 17+)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

MIN_JAVA = 17


class JavaError(RuntimeError):
    """No usable Java; the message says what to install or set."""


def java_executable(environ: dict[str, str] | None = None) -> str:
    """``$JAVA_HOME/bin/java`` when JAVA_HOME is set, else ``java`` from PATH."""
    env = os.environ if environ is None else environ
    if java_home := env.get("JAVA_HOME"):
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return str(candidate)
        raise JavaError(f"JAVA_HOME={java_home} has no bin/java: fix or unset JAVA_HOME")
    found = shutil.which("java")
    if found is None:
        raise JavaError(
            f"Java {MIN_JAVA}+ is not installed or not on PATH: install a JDK/JRE "
            "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return found


def parse_major_version(version_output: str) -> int:
    """The major version from ``java -version`` output (``"17.0.15"`` -> 17, ``"1.8.0"`` -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        raise JavaError(f"cannot read the Java version from: {version_output.strip()[:200]}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def checked_java(environ: dict[str, str] | None = None) -> str:
    """A Java executable of at least version 17, or a JavaError saying what is wrong."""
    java = java_executable(environ)
    completed = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = parse_major_version(completed.stderr + completed.stdout)
    if major < MIN_JAVA:
        raise JavaError(
            f"{java} is Java {major}; the Kafka broker needs Java {MIN_JAVA}+ (set JAVA_HOME)"
        )
    return java
