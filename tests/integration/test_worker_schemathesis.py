"""schemathesis against a real worker (`callstream worker` on a free port, the session's broker):
every route of its /openapi.json, every check. The document must describe what the worker does:
every parameter it takes and refuses, every status and its body.

Bounded and deterministic (worker_schemathesis.toml): the same requests every run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from callstream.health import wait_http_ok
from tests.contract_support import REPO_ROOT
from tests.integration.worker_support import worker_process

CONFIG = Path(__file__).with_name("worker_schemathesis.toml")
RUN_TIMEOUT_S = 300
OPERATIONS = 11  # every route but the document's own, which schemathesis never requests


async def test_the_worker_does_what_its_openapi_document_says(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    with worker_process(kafka_bootstrap, prefix, tmp_path) as worker:
        url = f"http://127.0.0.1:{worker.web_port}"
        # The live view answers once it has read its topic: wait, so no 503 counts as a failure.
        live_ready = await asyncio.to_thread(wait_http_ok, f"{url}/calls/live", 60)
        assert live_ready, worker.log.read_text()[-3000:]
        run = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
            *("run", f"{url}/openapi.json", "--no-color"),
            cwd=REPO_ROOT,  # the hooks module imports as tests.integration.*
            env=dict(os.environ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(run.communicate(), RUN_TIMEOUT_S)
    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-8000:]
    assert f"Selected: {OPERATIONS}/{OPERATIONS}" in report, report[-3000:]
    assert f"Tested: {OPERATIONS}" in report, report[-3000:]
