"""schemathesis against the real ingress (`callstream ingest` on a free port, the session's
broker): every route of its /openapi.json, every check, the token given. The document must
describe what the ingress does: bodies it takes and refuses, every status and its body.

Bounded and deterministic (schemathesis.toml): the same few thousand requests every run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

from callstream.schemas.topics import CALL_EVENTS, CDRS, REJECTED, topic_names
from tests.contract_support import REPO_ROOT
from tests.integration.ingress_support import TOKEN, default_env, ingress_process
from tests.kafka_support import read_topic

CONFIG = Path(__file__).with_name("schemathesis.toml")
RUN_TIMEOUT_S = 300


async def test_the_ingress_does_what_its_openapi_document_says(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = default_env()  # the ingress as deployed by default: what the hooks' limit assumes
    log = tmp_path / "ingress.log"
    async with ingress_process(env, kafka_bootstrap, prefix, log) as ingress:
        run = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG)),
            *("run", f"{ingress.url}/openapi.json", "--no-color"),
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
