"""`callstream ingest` SIGTERMed while simulated webhooks pour in, on the three-node cluster:
requests in flight finish (2xx) or fail (non-2xx, or no answer), and every 2xx is stored
(docs/reliability.md, check 3)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster_support import LocalCluster
from tests.integration.ingress_support import ingress_process
from tests.reliability.load import figures, finished, loading, simulated, stored_as_sent

pytestmark = pytest.mark.reliability

WEBHOOKS = 3000  # posted as fast as 64 connections allow
TERM_AFTER_ACKED = 500


async def test_sigterm_under_load_finishes_in_flight_requests_and_loses_no_ack(
    kafka_cluster: LocalCluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    began = time.monotonic()
    prefix = f"term{uuid.uuid4().hex[:8]}."
    deliveries = simulated(WEBHOOKS, f"term-{uuid.uuid4().hex[:6]}")
    log = tmp_path / "ingress.log"
    async with ingress_process(cli_env, kafka_cluster.bootstrap, prefix, log) as ingress:
        # One attempt each: every request's own answer, no retry to hide it. The client waits
        # longer than the ingress's shutdown grace (15 s).
        post = {"concurrency": 64, "max_attempts": 1, "timeout_s": 20.0}
        async with loading(ingress, deliveries, **post) as (load, task):
            await load.until_acked(TERM_AFTER_ACKED)
            ingress.process.send_signal(signal.SIGTERM)
            termed_at = time.monotonic()
            summary = await finished(task, 60)
        code = await asyncio.wait_for(ingress.process.wait(), 30)
        exited_s = time.monotonic() - termed_at
    stored = await stored_as_sent(kafka_cluster.bootstrap, prefix, load)

    statuses = load.statuses()
    after_term = [o for o in load.outcomes.values() if o.at > termed_at]
    completed = sum(1 for o in after_term if o.status == 200)
    figures(
        "ingress sigterm",
        webhooks=summary.sent,
        acked=summary.acked,
        acked_after_sigterm=completed,
        status_503=statuses.get(503, 0),
        no_answer=statuses.get(None, 0),
        records=stored.records,
        unacked_stored=stored.unacked,
        exited_s=round(exited_s, 1),
        took_s=round(time.monotonic() - began, 1),
    )
    assert code == 0, (await asyncio.to_thread(log.read_text))[-2000:]
    assert set(statuses) <= {200, 503, None}, statuses
    assert (summary.sent, len(load.outcomes)) == (WEBHOOKS, WEBHOOKS)
    # Requests in flight at the signal were answered, 200 and stored, not cut off.
    assert completed >= 1
    assert stored.acked_found == summary.acked >= TERM_AFTER_ACKED
