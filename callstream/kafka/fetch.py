"""Resolve the pinned Kafka jars with Maven into a checked, git-ignored cache.

A complete cache (every jar listed in ``manifest.json`` with its SHA-256) means no network and
no Maven at all. Otherwise Maven runs offline first (``mvn -o``: the local repository may
already hold everything) and online only if that fails.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from callstream.kafka.release import KafkaRelease
from callstream.progress import Progress, silent

MANIFEST_FORMAT = 1


class FetchError(RuntimeError):
    """The jars could not be resolved; the message says why and what to do."""


@dataclass(frozen=True)
class FetchResult:
    release: KafkaRelease
    jars: int
    from_cache: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_jars(release: KafkaRelease) -> dict[str, str] | str:
    """The manifest's jar checksums, or why the manifest cannot be used."""
    if not release.manifest.is_file():
        return "not fetched yet"
    try:
        manifest = json.loads(release.manifest.read_text())
        jars: dict[str, str] = dict(manifest["jars"])
        version = manifest["kafka_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"manifest unreadable ({exc})"
    if version != release.version:
        return f"manifest is for Kafka {version}, the pin is {release.version}"
    if not any(name.startswith("kafka_2.13-") for name in jars):
        return "manifest lists no kafka_2.13 jar"
    return jars


def cache_problem(release: KafkaRelease, *, verify_hashes: bool = True) -> str | None:
    """Why the cache of ``release`` cannot be used as it is, or None when it is complete."""
    jars = _manifest_jars(release)
    if isinstance(jars, str):
        return jars
    for name, expected in sorted(jars.items()):
        jar = release.libs_dir / name
        if not jar.is_file():
            return f"{name} is missing"
        if verify_hashes and _sha256(jar) != expected:
            return f"{name} does not match its checksum"
    return None


def _maven_command(mvn: str, release: KafkaRelease, out_dir: Path, *, offline: bool) -> list[str]:
    command = [mvn, "-B", "-q"]
    if offline:
        command.append("-o")
    command += [
        "-f",
        str(release.pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={out_dir}",
    ]
    return command


def _run_maven(command: list[str]) -> tuple[bool, str]:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return completed.returncode == 0, (completed.stdout + completed.stderr).strip()


def fetch(
    release: KafkaRelease,
    *,
    mvn: str = "mvn",
    offline_only: bool = False,
    progress: Progress = silent,
) -> FetchResult:
    """Make ``release``'s jars present and verified in its cache directory.

    ``offline_only`` forbids the online Maven step (then a missing artifact is an error).
    """
    progress(f"Kafka {release.version}: checking the cache in {release.cache_dir}")
    problem = cache_problem(release)
    if problem is None:
        count = len(list(release.libs_dir.glob("*.jar")))
        progress(
            f"Kafka {release.version}: cache complete ({count} jars verified), nothing to fetch"
        )
        return FetchResult(release, count, from_cache=True)
    progress(f"Kafka {release.version}: cache unusable: {problem}; resolving with Maven")

    mvn_path = shutil.which(mvn)
    if mvn_path is None:
        raise FetchError(
            f"Maven ('{mvn}') is not on PATH: install Maven 3.6+ (Debian: apt-get install maven)"
        )
    release.cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=release.cache_dir))
    try:
        progress("Maven: resolving offline from the local repository (mvn -o)")
        ok, output = _run_maven(_maven_command(mvn_path, release, staging, offline=True))
        if not ok and not offline_only:
            progress("Maven: not all artifacts are local; downloading from Maven Central")
            ok, output = _run_maven(_maven_command(mvn_path, release, staging, offline=False))
        if not ok:
            tail = "\n".join(output.splitlines()[-15:])
            raise FetchError(f"Maven could not resolve Kafka {release.version}:\n{tail}")
        jars = {jar.name: _sha256(jar) for jar in sorted(staging.glob("*.jar"))}
        if not any(name.startswith("kafka_2.13-") for name in jars):
            raise FetchError(f"Maven resolved no kafka_2.13 jar into {staging}")
        progress(f"Kafka {release.version}: writing {len(jars)} jars and their checksums")
        shutil.rmtree(release.libs_dir, ignore_errors=True)
        release.manifest.unlink(missing_ok=True)
        staging.rename(release.libs_dir)
        manifest = {"format": MANIFEST_FORMAT, "kafka_version": release.version, "jars": jars}
        release.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"Kafka {release.version}: ready in {release.libs_dir}")
    return FetchResult(release, len(jars), from_cache=False)
