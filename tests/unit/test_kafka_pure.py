"""The launcher's pure parts: probe wire format, Java version, pom pin, broker config, cache."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from callstream.kafka import probe
from callstream.kafka.broker import (
    JvmSettings,
    NodeConfig,
    jvm_options,
    new_cluster_id,
    server_properties,
)
from callstream.kafka.fetch import cache_problem
from callstream.kafka.java import JavaError, parse_major_version
from callstream.kafka.release import KafkaRelease, ReleaseError, pinned_version


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def test_metadata_request_is_a_size_prefixed_v4_request_for_no_topics() -> None:
    frame = probe.encode_metadata_request(correlation_id=42)
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    api_key, version, correlation, client_len = struct.unpack_from(">hhih", frame, 4)
    assert (api_key, version, correlation) == (3, 4, 42)
    body = frame[4 + 10 + client_len :]
    assert struct.unpack(">i?", body) == (0, False)


def test_metadata_response_brokers_are_decoded() -> None:
    brokers = struct.pack(">i", 2)
    brokers += struct.pack(">i", 1) + _string("127.0.0.1") + struct.pack(">i", 9092)
    brokers += struct.pack(">h", -1)  # no rack
    brokers += struct.pack(">i", 2) + _string("broker-2") + struct.pack(">i", 9093)
    brokers += _string("rack-a")
    response = struct.pack(">ii", 42, 0) + brokers + _string("cluster") + struct.pack(">ii", 1, 0)
    assert probe.decode_metadata_brokers(response, 42) == [
        probe.BrokerInfo(1, "127.0.0.1", 9092),
        probe.BrokerInfo(2, "broker-2", 9093),
    ]
    with pytest.raises(ValueError, match="correlation id 42, expected 7"):
        probe.decode_metadata_brokers(response, 7)


def test_probe_of_a_closed_port_says_no() -> None:
    from callstream.kafka.broker import free_port  # noqa: PLC0415

    assert probe.broker_answers("127.0.0.1", free_port(), timeout=0.5) is False


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_402"', 8),
        ('openjdk version "21.0.2" 2024-01-16 LTS', 21),
    ],
)
def test_java_major_version_is_read_from_java_dash_version(output: str, major: int) -> None:
    assert parse_major_version(output) == major


def test_unreadable_java_version_is_an_error() -> None:
    with pytest.raises(JavaError, match="cannot read the Java version"):
        parse_major_version("bash: java: command not found")


def _pom(tmp_path: Path, properties: str) -> Path:
    pom = tmp_path / "pom.xml"
    pom.write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        f"<properties>{properties}</properties></project>"
    )
    return pom


def test_the_pin_is_read_from_the_pom(tmp_path: Path) -> None:
    assert pinned_version(_pom(tmp_path, "<kafka.version> 9.9.9 </kafka.version>")) == "9.9.9"
    with pytest.raises(ReleaseError, match=r"no <kafka\.version>"):
        pinned_version(_pom(tmp_path, "<other>1</other>"))
    with pytest.raises(ReleaseError, match="cannot read"):
        pinned_version(tmp_path / "missing.xml")


def test_broker_config_listens_on_loopback_only() -> None:
    text = server_properties(NodeConfig.single(19092, 19093), Path("/data/logs"))
    config = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["process.roles"] == "broker,controller"
    assert config["log.dirs"] == "/data/logs"
    assert config["auto.create.topics.enable"] == "false"
    assert "0.0.0.0" not in text
    # One copy of everything, as the single broker always had.
    for key in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert config[key] == "1"
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "1"


def test_jvm_heap_is_fixed_and_extra_flags_come_last() -> None:
    options = jvm_options(JvmSettings(heap="768m", extra=("-Dx=1",)))
    assert options[:2] == ["-Xms768m", "-Xmx768m"]
    assert options[-1] == "-Dx=1"
    assert "-XX:+ExitOnOutOfMemoryError" in options
    assert jvm_options(JvmSettings())[:2] == ["-Xms1g", "-Xmx1g"]


def test_cluster_ids_are_22_url_safe_characters_unique_and_never_look_like_options() -> None:
    ids = {new_cluster_id() for _ in range(2000)}  # about 30 would start with '-' if allowed
    assert len(ids) == 2000
    assert all(len(i) == 22 for i in ids)
    assert not any(set(i) & set("=+/") for i in ids)
    assert not any(i.startswith("-") for i in ids)


def _cache(tmp_path: Path, version: str = "4.0.2") -> KafkaRelease:
    release = KafkaRelease(version=version, pom=tmp_path / "pom.xml", cache_root=tmp_path)
    release.libs_dir.mkdir(parents=True)
    jars = {}
    for name in (f"kafka_2.13-{version}.jar", "scala-library-2.13.15.jar"):
        content = name.encode()
        (release.libs_dir / name).write_bytes(content)
        jars[name] = hashlib.sha256(content).hexdigest()
    release.manifest.write_text(json.dumps({"kafka_version": version, "jars": jars}))
    return release


def test_a_complete_cache_has_no_problem(tmp_path: Path) -> None:
    assert cache_problem(_cache(tmp_path)) is None


def test_cache_problems_are_named(tmp_path: Path) -> None:
    release = _cache(tmp_path)
    (release.libs_dir / "scala-library-2.13.15.jar").write_bytes(b"corrupt")
    assert cache_problem(release) == "scala-library-2.13.15.jar does not match its checksum"
    (release.libs_dir / "scala-library-2.13.15.jar").unlink()
    assert cache_problem(release) == "scala-library-2.13.15.jar is missing"
    release.manifest.write_text("{not json")
    assert (cache_problem(release) or "").startswith("manifest unreadable")
    release.manifest.unlink()
    assert cache_problem(release) == "not fetched yet"


def test_a_cache_of_another_version_is_not_used(tmp_path: Path) -> None:
    release = _cache(tmp_path)
    newer = KafkaRelease(version="4.0.2", pom=release.pom, cache_root=tmp_path)
    text = release.manifest.read_text().replace(
        '"kafka_version": "4.0.2"', '"kafka_version": "3.9.1"'
    )
    newer.manifest.write_text(text)
    assert cache_problem(newer) == "manifest is for Kafka 3.9.1, the pin is 4.0.2"
