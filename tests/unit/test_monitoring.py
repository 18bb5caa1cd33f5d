"""deploy/: the alert rules pass `promtool check rules` and their own `promtool test rules`; the
Prometheus config passes `promtool check config`; every metric the Grafana dashboard and the
alerts query is one the services really export; compose mounts what exists."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from callstream.ingest.metrics import IngressMetrics
from callstream.processors.ops_metrics import WorkerMetrics
from tests.promtool import promtool

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "callstream.json"
# What Prometheus itself records of every scrape.
SCRAPE_SERIES = {"up"}
# What issue #16 asks the dashboard to show.
SHOWN = {
    "callstream_ingress_requests_total",  # webhook rate by status, 503s
    "callstream_ingress_kafka_ack_seconds_bucket",
    "callstream_worker_consumer_lag",
    "callstream_worker_events_folded_total",
    "callstream_worker_completions_total",
    "callstream_worker_late_dropped_total",
    "process_resident_memory_bytes",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
METRIC_NAME = re.compile(r"\b(?:callstream_|process_)[a-z0-9_]+|\bup\b")


def exported(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can expose, labelled or not."""
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def queried(expression: str) -> set[str]:
    """The metric names in a PromQL expression (label values and strings left out)."""
    return set(METRIC_NAME.findall(re.sub(r'"[^"]*"', '""', expression)))


def run_promtool(*args: str) -> str:
    done = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def alert_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def test_the_alert_rules_pass_promtool_and_their_own_tests() -> None:
    checked = run_promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert "SUCCESS: 9 rules found" in checked
    assert "SUCCESS" in run_promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))
    assert "SUCCESS" in run_promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))


def test_every_alert_has_a_severity_and_a_runbook_in_the_docs() -> None:
    monitoring = (REPO / "docs" / "monitoring.md").read_text()
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
            anchor = rule["annotations"]["runbook"].removeprefix("docs/monitoring.md#")
            assert f"### {rule['alert']}\n" in monitoring, anchor
            assert anchor == rule["alert"].lower()


@pytest.mark.parametrize(
    ("where", "expressions"),
    [("dashboard", dashboard_expressions), ("alerts", alert_expressions)],
)
def test_every_metric_queried_is_one_the_services_export(where: str, expressions: object) -> None:
    assert callable(expressions)
    names = (
        exported(IngressMetrics.create().registry)
        | exported(WorkerMetrics.create().registry)
        | SCRAPE_SERIES
    )
    used = {(title, name) for title, expr in expressions() for name in queried(expr)}
    assert used, where
    assert {(title, name) for title, name in used if name not in names} == set()


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    used = {name for _, expr in dashboard_expressions() for name in queried(expr)}
    assert used >= SHOWN, SHOWN - used
    panels = json.loads(DASHBOARD.read_text())["panels"]
    sources = {target["datasource"]["uid"] for panel in panels for target in panel["targets"]}
    provisioned = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert sources == {source["uid"] for source in provisioned["datasources"]}


def test_compose_monitoring_profile_mounts_files_that_exist() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            assert (REPO / source).exists(), volume
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:"), port  # never on every interface
    for name in ("kafka", "ingress", "worker"):
        assert "profiles" not in services[name]  # `docker compose up` still runs the pipeline
