"""The broker leading the most input partitions SIGKILLed while simulated webhooks arrive, then
started again: every webhook answered 2xx is on its topic exactly as sent, and no request was
answered anything but 200 or 503 (docs/reliability.md, check 1). Bounded enough to run in
`make test` as well (marker ``failover``)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tests.cluster_support import LocalCluster, leaderships
from tests.integration.ingress_support import ingress_process
from tests.kafka_support import wait_while_lacking
from tests.reliability.load import (
    busiest_leader,
    figures,
    finished,
    input_topics,
    loading,
    node_killed,
    simulated,
    stored_as_sent,
)

# Bounded, as `make test` runs it (the session starts the cluster once, for its first test).
pytestmark = [pytest.mark.failover, pytest.mark.timeout(120)]

WEBHOOKS, PER_S = 1500, 100.0  # 15 s of load
KILL_AFTER_ACKED = 300  # about 3 s in


async def test_a_leader_killed_under_load_loses_no_acknowledged_webhook(
    kafka_cluster: LocalCluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    began = time.monotonic()
    prefix = f"kill{uuid.uuid4().hex[:8]}."
    deliveries = simulated(WEBHOOKS, f"kill-{uuid.uuid4().hex[:6]}", PER_S)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    await admin.start()
    try:
        log = tmp_path / "ingress.log"
        async with ingress_process(cli_env, kafka_cluster.bootstrap, prefix, log) as ingress:
            node, led = await busiest_leader(admin, prefix)
            async with loading(ingress, deliveries, concurrency=64) as (load, task):
                await load.until_acked(KILL_AFTER_ACKED)
                async with node_killed(kafka_cluster, node, admin, prefix):
                    killed_at = time.monotonic()

                    async def still_leading() -> str | None:
                        try:
                            leads = (await leaderships(admin, input_topics(prefix)))[node]
                        except KafkaError as error:  # the admin asks any node, the dead one too
                            return f"describing the topics failed: {error!r}"
                        return f"node {node} leads {leads}" if leads else None

                    await wait_while_lacking(still_leading, "new leaders", deadline_s=30)
                    failover_s = time.monotonic() - killed_at
                # Started again and back in sync while the load goes on.
                summary = await finished(task, 120)
            assert ingress.process.returncode is None
        stored = await stored_as_sent(kafka_cluster.bootstrap, prefix, load)
    finally:
        await admin.close()

    attempts = sum(summary.by_status.values())
    figures(
        "broker kill",
        webhooks=summary.sent,
        requests=attempts,
        ok_2xx=summary.by_status[200],
        status_503=summary.by_status[503],
        acked=summary.acked,
        records=stored.records,
        copies=stored.copies,
        killed_node=node,
        partitions_led=led,
        failover_s=round(failover_s, 1),
        took_s=round(time.monotonic() - began, 1),
    )
    # Every attempt had an HTTP answer, 200 or 503; the provider's retries got every webhook in.
    assert set(summary.by_status) <= {200, 503}, summary.by_status
    assert attempts == summary.sent + summary.retried
    assert (summary.sent, summary.acked) == (WEBHOOKS, WEBHOOKS)
    assert stored.acked_found == WEBHOOKS
