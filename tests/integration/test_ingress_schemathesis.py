"""schemathesis against the real ingress (`callstream ingest` on a free port, the session's
broker): every route of its /openapi.json, every check, the token given. The document must
describe what the ingress does: bodies it takes and refuses, every status and its body.

Bounded and deterministic (schemathesis.toml): the same few thousand requests every run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from callstream.health import wait_http_ok
from callstream.kafka.broker import free_port
from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED, topic_names
from tests.contract_support import REPO_ROOT
from tests.integration.ingress_support import TOKEN
from tests.kafka_support import read_topic

CONFIG = Path(__file__).with_name("schemathesis.toml")
RUN_TIMEOUT_S = 300
# The ingress as deployed by default: what the hooks' size limit assumes, no optional checks.
UNSET = (
    "CALLSTREAM_MAX_BODY_BYTES",
    "CALLSTREAM_WEBHOOK_SIGNING_SECRET",
    "CALLSTREAM_ALLOWED_CIDRS",
    "CALLSTREAM_TRUSTED_PROXIES",
    "CALLSTREAM_INGEST_PROCESSES",
)


@contextmanager
def ingress_process(bootstrap: str, prefix: str, log: Path) -> Iterator[str]:
    """`callstream ingest` on a free port of 127.0.0.1, ready; yields its base URL."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env |= {
        "CALLSTREAM_WEBHOOK_TOKENS": TOKEN,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "CALLSTREAM_TOPIC_PREFIX": prefix,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "callstream", "ingest", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_http_ok(f"{url}/readyz", 60):
            raise AssertionError(f"the ingress did not become ready:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_the_ingress_does_what_its_openapi_document_says(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with ingress_process(kafka_bootstrap, prefix, tmp_path / "ingress.log") as url:
        run = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
            *("run", f"{url}/openapi.json", "--no-color"),
            cwd=REPO_ROOT,  # the hooks module imports as tests.integration.schemathesis_hooks
            env={**os.environ, "CALLSTREAM_TEST_TOKEN": TOKEN},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(run.communicate(), RUN_TIMEOUT_S)
    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-8000:]
    assert "Selected: 5/5" in report
    assert "Tested: 5" in report
    # Not vacuous: the token worked, and bodies of both kinds (and refused ones) were published.
    topics = topic_names(prefix)
    for name in (CALL_EVENTS, CDRS, REJECTED):
        assert await read_topic(kafka_bootstrap, topics[name], expect=1), name
