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


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, in order."""
    lines = (REPO / "Dockerfile").read_text().splitlines()
    steps = [tuple(line.split(maxsplit=1)) for line in lines if line and not line.startswith("#")]
    final = max(i for i, step in enumerate(steps) if step[0] == "FROM")
    return [(step[0].upper(), step[1] if len(step) > 1 else "") for step in steps[final:]]


def test_the_image_gives_the_worker_a_data_dir_its_user_owns() -> None:
    steps = _dockerfile_instructions()
    env = dict(arguments.split("=", 1) for name, arguments in steps if name == "ENV")
    data_dir = env["CALLSTREAM_DATA_DIR"]
    user = next(arguments for name, arguments in steps if name == "USER")
    # compose's worker volume is mounted where the worker keeps its tables
    volumes = _compose()["services"]["worker"]["volumes"]
    assert isinstance(volumes, list)
    assert any(str(volume).endswith(f":{data_dir}") for volume in volumes)
    # ... and the image creates that directory, owned by the non-root user, before switching
    runs = [args for name, args in steps[: steps.index(("USER", user))] if name == "RUN"]
    assert any("mkdir -p" in run and "$CALLSTREAM_DATA_DIR" in run for run in runs)
    assert any(f'chown {user}:{user} "$CALLSTREAM_DATA_DIR"' in run for run in runs)
    assert user != "root"
    assert ("VOLUME", f'["{data_dir}"]') in steps


def test_each_service_is_healthy_once_its_readyz_answers() -> None:
    services = _compose()["services"]
    for name in ("ingress", "worker"):
        command = services[name]["command"]
        assert isinstance(command, list)
        port = command[command.index("--port" if name == "ingress" else "--web-port") + 1]
        healthcheck = services[name]["healthcheck"]
        assert isinstance(healthcheck, dict)
        assert f"'http://127.0.0.1:{port}/readyz'" in " ".join(healthcheck["test"]), name
