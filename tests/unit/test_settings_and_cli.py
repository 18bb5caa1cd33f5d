"""Settings from the environment and the CLI's public verbs (../shared/contract.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callstream.cli import build_parser
from callstream.settings import KafkaSettings, SettingsError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_point_at_the_local_broker() -> None:
    settings = KafkaSettings.from_env({"CALLSTREAM_HOME": str(REPO)})
    assert settings.bootstrap_servers is None
    assert settings.port == 9092
    assert settings.local_bootstrap == "127.0.0.1:9092"
    assert settings.data_dir == REPO / ".cache" / "kafka-data"
    assert settings.release.cache_dir == REPO / ".cache" / "kafka" / settings.release.version
    assert settings.jvm.heap is None  # 1g for a single broker, 512m per node of a cluster


def test_environment_overrides(tmp_path: Path) -> None:
    settings = KafkaSettings.from_env(
        {
            "CALLSTREAM_HOME": str(REPO),
            "KAFKA_BOOTSTRAP_SERVERS": " broker-a:9092,broker-b:9092 ",
            "CALLSTREAM_KAFKA_PORT": "19092",
            "CALLSTREAM_KAFKA_DATA_DIR": str(tmp_path / "d"),
            "CALLSTREAM_KAFKA_CACHE_DIR": str(tmp_path / "c"),
            "CALLSTREAM_KAFKA_HEAP": "512m",
            "CALLSTREAM_KAFKA_JAVA_OPTS": "-Da=1 -Db='two words'",
            "CALLSTREAM_KAFKA_START_TIMEOUT": "12.5",
        }
    )
    assert settings.bootstrap_servers == "broker-a:9092,broker-b:9092"
    assert settings.port == 19092
    assert settings.data_dir == tmp_path / "d"
    assert settings.release.cache_dir == tmp_path / "c" / settings.release.version
    assert settings.jvm.heap == "512m"
    assert settings.jvm.extra == ("-Da=1", "-Db=two words")
    assert settings.start_timeout == 12.5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CALLSTREAM_KAFKA_PORT", "ninety"),
        ("CALLSTREAM_KAFKA_START_TIMEOUT", "soon"),
        ("CALLSTREAM_KAFKA_START_TIMEOUT", "nan"),
        ("CALLSTREAM_KAFKA_START_TIMEOUT", "-inf"),
    ],
)
def test_bad_numbers_are_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        KafkaSettings.from_env({"CALLSTREAM_HOME": str(REPO), name: value})


@pytest.mark.parametrize(
    "argv",
    [
        ["kafka", "fetch"],
        ["kafka", "start", "--port", "9092", "--data-dir", "d"],
        ["kafka", "stop", "--data-dir", "d"],
        ["kafka", "status", "--data-dir", "d"],
        ["up"],
        ["ingest", "--host", "127.0.0.1", "--port", "8080"],
        ["worker", "--web-host", "127.0.0.1", "--web-port", "6066"],
    ],
)
def test_contract_verbs_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_default_ports_match_the_contract() -> None:
    parser = build_parser()
    assert parser.parse_args(["ingest"]).port == 8080
    assert parser.parse_args(["ingest"]).host == "127.0.0.1"
    assert parser.parse_args(["worker"]).web_port == 6066
