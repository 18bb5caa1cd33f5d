"""docker-compose.yml cannot run here (no Docker engine), so check what can drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from callstream.kafka.release import pinned_version

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_kafka_is_the_pinned_version() -> None:
    image = str(_compose()["services"]["kafka"]["image"])
    name, _, tag = image.partition(":")
    assert name == "apache/kafka"
    assert tag == pinned_version(REPO / "deploy" / "kafka" / "pom.xml")


def test_compose_runs_kraft_and_both_services_from_the_dockerfile() -> None:
    services = _compose()["services"]
    kafka_env = services["kafka"]["environment"]
    assert isinstance(kafka_env, dict)
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for name, verb in (("ingress", "ingest"), ("worker", "worker")):
        assert services[name]["build"] == "."
        command = services[name]["command"]
        assert isinstance(command, list)
        assert command[0] == verb
        environment = services[name]["environment"]
        assert isinstance(environment, dict)
        assert environment["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert (REPO / "Dockerfile").is_file()
