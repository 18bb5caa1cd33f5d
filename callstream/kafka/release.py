"""The pinned Kafka release and where its files live.

The pin is ``kafka.version`` in ``deploy/kafka/pom.xml``: one place, read here, checked against
``docker-compose.yml`` by a test.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

POM_RELATIVE = Path("deploy/kafka/pom.xml")
_MAVEN_NS = "{http://maven.apache.org/POM/4.0.0}"


class ReleaseError(RuntimeError):
    """The pom cannot be found or does not name a Kafka version."""


def project_root(environ: dict[str, str] | None = None) -> Path:
    """The checkout that holds ``deploy/kafka/pom.xml``.

    ``CALLSTREAM_HOME`` wins; else the checkout this package was installed from (editable
    install); else the current directory.
    """
    env = os.environ if environ is None else environ
    if home := env.get("CALLSTREAM_HOME"):
        return Path(home).resolve()
    source_checkout = Path(__file__).resolve().parents[2]
    if (source_checkout / POM_RELATIVE).is_file():
        return source_checkout
    return Path.cwd()


def pinned_version(pom: Path) -> str:
    """The ``kafka.version`` property of the pom."""
    try:
        tree = ET.parse(pom)  # noqa: S314 - our own file from the repository
    except (OSError, ET.ParseError) as exc:
        raise ReleaseError(f"cannot read the Kafka pom {pom}: {exc}") from exc
    node = tree.getroot().find(f"{_MAVEN_NS}properties/{_MAVEN_NS}kafka.version")
    if node is None or not (node.text or "").strip():
        raise ReleaseError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


@dataclass(frozen=True)
class KafkaRelease:
    """One pinned Kafka version and its jar cache directory."""

    version: str
    pom: Path
    cache_root: Path

    @property
    def cache_dir(self) -> Path:
        """``<cache_root>/<version>``: the manifest and ``libs/`` of this version."""
        return self.cache_root / self.version

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "libs"

    @property
    def manifest(self) -> Path:
        return self.cache_dir / "manifest.json"

    @property
    def classpath(self) -> str:
        return str(self.libs_dir / "*")


def pinned_release(root: Path, cache_root: Path | None = None) -> KafkaRelease:
    """The release pinned in ``root``'s pom, cached in ``cache_root`` (default .cache/kafka)."""
    pom = root / POM_RELATIVE
    return KafkaRelease(
        version=pinned_version(pom),
        pom=pom,
        cache_root=cache_root if cache_root is not None else root / ".cache" / "kafka",
    )
