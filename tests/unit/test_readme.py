"""README says what works today: the routes it names are served, the topics its opening names
are published."""

from __future__ import annotations

import re
from pathlib import Path

from callstream.ingest.app import INGRESS_TOPICS, create_app
from callstream.ingest.settings import IngressSettings
from callstream.processors.app import OUTPUT_TOPICS, create_worker_app
from callstream.processors.settings import WorkerSettings
from callstream.schemas.topics import METRICS, TOPICS

README = Path(__file__).resolve().parents[2] / "README.md"
# `GET /readyz`, `/metrics`, `POST /webhooks/omicall/{token}`: a route named in backticks.
_ROUTE = re.compile(r"`(?:(GET|POST|HEAD) )?(/[A-Za-z][A-Za-z0-9_.{}/-]*)`")


def _routes_served(tmp_path: Path) -> set[tuple[str, str]]:
    ingress = create_app(IngressSettings.from_env({"CALLSTREAM_WEBHOOK_TOKENS": "t" * 32}))
    worker = create_worker_app(WorkerSettings.from_env({"CALLSTREAM_DATA_DIR": str(tmp_path)}))
    # web_app: the aiohttp Application of faust's aiohttp driver (the base Web type lacks it)
    worker_app = worker.web.web_app  # type: ignore[attr-defined]
    routes = list(ingress.router.routes()) + list(worker_app.router.routes())
    return {(route.method, route.resource.canonical) for route in routes if route.resource}


def test_every_route_the_readme_names_is_served(tmp_path: Path) -> None:
    served = _routes_served(tmp_path)
    named = set(_ROUTE.findall(README.read_text("utf-8")))
    assert named, "the README names no route: the pattern is stale"
    missing = [
        f"{method or 'any'} {path}"
        for method, path in sorted(named)
        if not any(path == p and method in ("", m) for m, p in served)
    ]
    assert missing == []


def test_the_opening_names_only_topics_that_are_published() -> None:
    opening = README.read_text("utf-8").split("\n## ", 1)[0]
    published = {*OUTPUT_TOPICS, METRICS, *INGRESS_TOPICS}  # the windows' writer sends METRICS
    named = {spec.name for spec in TOPICS if re.search(rf"\b{re.escape(spec.name)}\b", opening)}
    assert named, "the opening names no topic: the check is stale"
    assert named <= published, f"named but not published: {sorted(named - published)}"
