"""The URL a worker advertises to its group, which the query API sends requests to."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from callstream.processors.app import create_worker_app
from callstream.processors.settings import WorkerSettings
from callstream.settings import SettingsError


def test_by_default_its_web_host_and_port() -> None:
    settings = replace(WorkerSettings.from_env({}), web_host="10.0.0.5", web_port=7001)
    assert settings.canonical_url == "http://10.0.0.5:7001"


@pytest.mark.parametrize(
    ("given", "advertised"),
    [
        ("http://worker-2:6066", "http://worker-2:6066"),
        (" https://w.example/ ", "https://w.example"),
    ],
)
def test_callstream_worker_url_names_it(given: str, advertised: str) -> None:
    settings = replace(
        WorkerSettings.from_env({"CALLSTREAM_WORKER_URL": given}), web_host="0.0.0.0"
    )
    assert settings.canonical_url == advertised


@pytest.mark.parametrize("given", ["worker-2:6066", "ftp://w:1", "http://w:6066/api", "http://"])
def test_a_url_other_workers_could_not_use_is_refused(given: str) -> None:
    with pytest.raises(SettingsError, match="CALLSTREAM_WORKER_URL"):
        WorkerSettings.from_env({"CALLSTREAM_WORKER_URL": given})


def test_the_faust_app_advertises_it(tmp_path: Path) -> None:
    env = {"CALLSTREAM_DATA_DIR": str(tmp_path), "CALLSTREAM_WORKER_URL": "http://worker-2:7002"}
    app = create_worker_app(WorkerSettings.from_env(env))
    assert str(app.conf.canonical_url) == "http://worker-2:7002"
