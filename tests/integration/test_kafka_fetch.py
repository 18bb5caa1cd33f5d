"""`callstream kafka fetch`: no network and no Maven with a complete cache; repairs offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from callstream.kafka.release import KafkaRelease
from tests.integration.cli_helpers import callstream


def test_complete_cache_needs_no_maven_at_all(
    kafka_release: KafkaRelease, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "CALLSTREAM_MVN": str(tmp_path / "no-such-mvn")}
    run = callstream("kafka", "fetch", env=env)
    assert run.code == 0, run.stderr
    assert "nothing to fetch" in run.stderr
    assert "Maven" not in run.stderr
    assert Path(run.stdout.strip()) == kafka_release.libs_dir


def test_corrupt_cache_is_detected_and_repaired_offline(
    kafka_release: KafkaRelease, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cache_root = tmp_path / "kafka-cache"
    shutil.copytree(kafka_release.cache_dir, cache_root / kafka_release.version)
    manifest = json.loads((cache_root / kafka_release.version / "manifest.json").read_text())
    victim = next(name for name in manifest["jars"] if name.startswith("kafka_2.13-"))
    (cache_root / kafka_release.version / "libs" / victim).write_bytes(b"truncated")

    env = {**cli_env, "CALLSTREAM_KAFKA_CACHE_DIR": str(cache_root)}
    run = callstream("kafka", "fetch", "--offline", env=env, timeout=300)
    assert run.code == 0, run.stderr
    assert f"{victim} does not match its checksum" in run.stderr
    assert "mvn -o" in run.stderr
    assert "downloading" not in run.stderr

    again = callstream("kafka", "fetch", "--offline", env=env)
    assert again.code == 0
    assert "nothing to fetch" in again.stderr


def test_missing_maven_with_an_empty_cache_is_a_clear_error(
    kafka_release: KafkaRelease, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "CALLSTREAM_KAFKA_CACHE_DIR": str(tmp_path / "empty-cache"),
        "CALLSTREAM_MVN": "no-such-mvn",
    }
    run = callstream("kafka", "fetch", env=env)
    assert run.code == 1
    assert "Maven ('no-such-mvn') is not on PATH" in run.stderr
