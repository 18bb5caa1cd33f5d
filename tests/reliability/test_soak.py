"""Issue #15, check 7, the soak (`make soak`, not CI; docs/reliability.md): the simulator's
traffic, every delivery fault on, posted at a steady rate (``CALLSTREAM_SOAK_RATE`` webhooks a
second, 250 by default: half what this stack sustains here) for ``CALLSTREAM_SOAK_MINUTES`` (30)
to a real ingress and worker on the three-node cluster, sampled every
``CALLSTREAM_SOAK_SAMPLE_S`` (30 s). Then:

- the rate held: acked webhooks a second over the run at least 95% of the rate offered, every
  webhook acked, none refused or failed;
- RSS flat: the ingress's and the worker's, from just after the warm-up (the first fifth of
  the run) to the end, grew by less than 10% (medians of three samples each);
- lag bounded: the worker group's committed lag on the input topics never above
  ``lag_bound_s`` (60) seconds of traffic, and 0 within :data:`DRAIN_S` once the traffic ends;
- counts reconcile: every acked webhook on its topic byte for byte by request id, no record
  of anything not sent; the worker folded every record of the input topics once and rejected
  none; calls-completed's highest revisions, every metric window, and the query API equal
  the simulator's truth;
- nothing logged at error level (or a traceback) by the ingress or the worker, both exit 0.

Each check is recorded as it runs and a failed one does not stop the rest; the samples and the
verdict go to bench/results/soak.json, and a table to stdout.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench.report import print_table, write_results
from callstream.traffic.plan import merged
from callstream.traffic.poster import PostSettings, PostSummary, post_deliveries
from callstream.traffic.simulation import Simulation, call_plans
from tests.cluster_support import LocalCluster
from tests.integration.ingress_support import TOKEN, ingress_process
from tests.integration.simulated_support import Pipeline, Simulated, check_served, simulated_truth
from tests.integration.worker_support import Worker
from tests.kafka_support import wait_while_lacking
from tests.reliability.load import input_topics
from tests.reliability.soak_support import (
    CALL_STATES,
    RSS_GROWTH,
    GroupLag,
    Ledger,
    Sampler,
    SoakSettings,
    Verdict,
    completed_as_the_truth_says,
    logged,
    rss_growth,
    soak_simulation,
    stored_as_acked,
    windows_as_the_truth_says,
)
from tests.reliability.soak_support import group_lag as lag_of
from tests.reliability.worker_kills_support import WorkerSpec, folded_by_topic, paced

SETTINGS = SoakSettings.from_env()
DRAIN_S = 300.0  # once the traffic ends, the worker's group commits everything within this
CDR_TIMEOUT_S = 60  # a call without its CDR completes this long after its hangup
TRUTH_S = CDR_TIMEOUT_S + 240.0  # calls-completed equals the truth within this of the drain
# The run, the drain, reading 2M records back and the truth: well within the run's length again.
pytestmark = [pytest.mark.soak, pytest.mark.timeout(int(2 * SETTINGS.duration_s + 1800))]
# The worker as deployed (RocksDB, its timer every 10 s), but for the CDR timeout: 15 minutes
# would keep the calls without a CDR open past the drain.
WORKER_ENV = {"CALLSTREAM_CDR_TIMEOUT_S": str(CDR_TIMEOUT_S), "CALLSTREAM_TIMER_INTERVAL_S": "10"}
CONCURRENCY = 64  # requests in flight at most


def mb(value: float) -> str:
    return f"{value:.1f} MB"


async def test_soak(kafka_cluster: LocalCluster, tmp_path: Path) -> None:
    settings = SETTINGS
    simulation = soak_simulation(settings, int(time.time()))
    prefix = f"soak{uuid.uuid4().hex[:8]}."
    topics = input_topics(prefix)
    ledger = Ledger(f"soak-{uuid.uuid4().hex[:6]}", topics)
    verdict = Verdict()
    report: dict[str, Any] = {
        "settings": {**asdict(settings), "calls": simulation.calls, "calls_per_s": simulation.rate},
        "prefix": prefix,
        "logs": str(tmp_path),
    }
    print(
        f"\n[soak] {settings.minutes:g} min at {settings.per_s:,.0f} webhooks/s: "
        f"{simulation.calls:,} calls, every fault on; logs in {tmp_path}",
        flush=True,
    )
    bootstrap = kafka_cluster.bootstrap
    ingress_log = tmp_path / "ingress.log"
    async with ingress_process(os.environ, bootstrap, prefix, ingress_log) as ingress:
        spec = WorkerSpec(bootstrap, prefix, tmp_path, f"{prefix}worker", "soak", WORKER_ENV)
        worker = await spec.start()
        try:
            pipeline = Pipeline(bootstrap, prefix, f"{ingress.url}/webhooks/omicall", worker.url)
            # The soak's window in each log: start-up is before it (aiokafka logs at error
            # level that the group coordinator is not there yet, on a new cluster).
            started_at = {
                "ingress": ingress_log.stat().st_size,
                "worker": worker.log.stat().st_size,
            }
            async with lag_of(bootstrap, spec.app_id, topics) as lag:
                pids = (ingress.process.pid, worker.process.pid)
                sampler = Sampler(
                    ledger,
                    pids=pids,
                    worker_url=worker.url,
                    lag=lag,
                    data_dir=kafka_cluster.data_dir,
                    every_s=settings.sample_s,
                )
                summary = await traffic(pipeline, simulation, ledger, sampler, settings.per_s)
                await sampler.take()
                drained = await drain(lag)
            report["samples"] = [asdict(sample) for sample in sampler.samples]
            report["posted"] = summary.counts()
            report["drained_s"] = drained
            check_load(verdict, settings, summary)
            check_memory(verdict, settings, sampler)
            verdict.record(
                "lag bounded",
                (peak := max(s.lag for s in sampler.samples)) <= settings.lag_bound
                and drained is not None,
                f"at most {peak:,} (bound {settings.lag_bound:,}: {settings.lag_bound_s:g} s of "
                f"traffic); 0 {f'{drained:.0f} s' if drained is not None else 'not'} after the "
                f"traffic ended (within {DRAIN_S:g} s)",
            )
            await reconcile(
                verdict,
                report=report,
                pipeline=pipeline,
                simulation=simulation,
                ledger=ledger,
                worker=worker,
                topics=topics,
            )
        finally:
            code = await asyncio.to_thread(worker.stop)
    verdict.record(
        "exits",
        (code, ingress.process.returncode) == (0, 0),
        f"worker {code}, ingress {ingress.process.returncode}",
    )
    check_logs(verdict, report, {"ingress": ingress_log, "worker": worker.log}, started_at)
    report["verdict"] = verdict.checks
    report["test_process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summarize(report, verdict)
    assert not verdict.failed, f"failed: {', '.join(verdict.failed)}"


async def traffic(
    pipeline: Pipeline, simulation: Simulation, ledger: Ledger, sampler: Sampler, per_s: float
) -> PostSummary:
    """The traffic at its steady rate, sampled until it ends."""
    settings = PostSettings(url=pipeline.ingress_url, token=TOKEN, speed=1, concurrency=CONCURRENCY)
    deliveries = ledger.numbered(paced(merged(call_plans(simulation)), per_s))
    sampling = asyncio.create_task(sampler.run())
    try:
        return await post_deliveries(
            deliveries, settings, on_result=ledger.on_result, progress=ledger
        )
    finally:
        sampling.cancel()
        (stopped,) = await asyncio.gather(sampling, return_exceptions=True)
        if not isinstance(stopped, asyncio.CancelledError):
            raise AssertionError(f"the sampling failed: {stopped!r}")


async def drain(lag: GroupLag) -> float | None:
    """Seconds until the worker's group has committed every input record (None: not within
    :data:`DRAIN_S`)."""
    began = time.monotonic()

    async def behind() -> str | None:
        return f"lag {left:,}" if (left := await lag()) else None

    try:
        await wait_while_lacking(behind, "the worker's group drained", deadline_s=DRAIN_S)
    except AssertionError:
        return None
    return time.monotonic() - began


def check_load(verdict: Verdict, settings: SoakSettings, summary: PostSummary) -> None:
    held = summary.rate
    verdict.record(
        "rate held",
        held >= 0.95 * settings.per_s
        and summary.acked == summary.sent
        and not (summary.refused or summary.failed or summary.interrupted),
        f"{held:,.0f} webhooks/s acked over {summary.elapsed_s:,.0f} s (offered "
        f"{settings.per_s:,.0f}); {summary.sent:,} sent, {summary.acked:,} acked, "
        f"{summary.refused} refused, {summary.failed} failed, {summary.retried} retried, "
        f"answers {dict(summary.by_status)}",
    )


def check_memory(verdict: Verdict, settings: SoakSettings, sampler: Sampler) -> None:
    first = sampler.samples[0]
    for name, worker, idle in (
        ("ingress", False, first.ingress_rss_mb),
        ("worker", True, first.worker_rss_mb),
    ):
        try:
            growth = rss_growth(sampler.samples, settings.warmup_s, worker)
        except AssertionError as failure:
            verdict.record(f"{name} RSS flat", False, str(failure))
            continue
        # Not a criterion: whether the growth went on to the end or stopped on the way.
        last_third = rss_growth(sampler.samples, settings.duration_s * 2 / 3, worker)
        verdict.record(
            f"{name} RSS flat",
            growth.share < RSS_GROWTH,
            f"{mb(growth.after_warmup_mb)} after the warm-up ({settings.warmup_s:.0f} s), "
            f"{mb(growth.end_mb)} at the end: {growth.share:+.1%} (under {RSS_GROWTH:.0%}); "
            f"{mb(idle)} before the traffic, peak {mb(growth.peak_mb)}; over the last third "
            f"{last_third.share:+.1%}",
        )


async def reconcile(
    verdict: Verdict,
    *,
    report: dict[str, Any],
    pipeline: Pipeline,
    simulation: Simulation,
    ledger: Ledger,
    worker: Worker,
    topics: list[str],
) -> None:
    """What the input topics hold against the acks; what the worker folded against what they
    hold; what the pipeline ends with against the truth."""

    async def stored() -> str:
        found = await stored_as_acked(pipeline.bootstrap, topics, ledger)
        report["stored"] = {**asdict(found), "by_topic": dict(found.by_topic)}
        assert not found.wrong, f"{found.wrong} records wrong: {found.problems}"
        assert found.acked_found == ledger.acked()
        folded = await folded_by_topic(worker)
        report["folded"] = {f"{topic} {outcome}": n for (topic, outcome), n in folded.items()}
        by_topic = {name: sum(n for (t, _), n in folded.items() if t == name) for name in topics}
        rejected = sum(n for (t, kind), n in folded.items() if t in topics and kind == "rejected")
        assert by_topic == dict(found.by_topic), f"folded {by_topic}, stored {found.by_topic}"
        assert not rejected, f"{rejected} records rejected"
        return (
            f"{found.acked_found:,} of {ledger.acked():,} acked webhooks on their topics as "
            f"sent; {found.records:,} records ({found.copies:,} copies, {found.unacked:,} never "
            f"acked); the worker folded each once: {sum(by_topic.values()):,}, none rejected"
        )

    await verdict.run("acked = stored = folded", stored())
    simulated: Simulated = await asyncio.to_thread(simulated_truth, simulation, lines=False)

    async def truth() -> str:
        completed = await completed_as_the_truth_says(pipeline, simulated, TRUTH_S)
        windows = await windows_as_the_truth_says(pipeline, simulated, 120)
        await check_served(pipeline, simulated)
        report["completed"] = asdict(completed)
        return (
            f"{completed.calls:,} calls on calls-completed ({completed.records:,} records, "
            f"{completed.repeated} repeating a revision) and {windows:,} metric windows equal "
            f"the truth's {len(simulated.completed):,} calls and {len(simulated.windows):,} "
            "windows; the query API too"
        )

    await verdict.run("calls and windows = truth", truth())


def check_logs(
    verdict: Verdict, report: dict[str, Any], logs: dict[str, Path], started_at: dict[str, int]
) -> None:
    """No error from the traffic's start to the exit; what came before is reported."""
    for name, path in logs.items():
        errors, warnings = logged(path, started_at[name])
        before, _ = logged(path, 0, started_at[name])
        report[f"{name}_log"] = {
            "errors": errors,
            "warnings": dict(warnings),
            "errors_at_start_up": before,
        }
        top = "; ".join(f"{n} x {message[:100]}" for message, n in warnings.most_common(3))
        verdict.record(
            f"{name} logged no error",
            not errors,
            f"{len(errors)} lines at error level (e.g. {errors[:2]}); "
            f"{sum(warnings.values())} warnings ({top or 'none'}); at start-up, before the "
            f"traffic: {len(before)} errors",
        )


def summarize(report: dict[str, Any], verdict: Verdict) -> None:
    """The samples and the checks as tables; everything to bench/results/soak.json."""
    headers = ["s", "acked", "/s", "refused", "ingress MB", "worker MB", "stores MB"]
    headers += ["ingress CPU"]
    headers += ["worker CPU", "folded/s", "lag", "call states", "kafka GB"]
    rows = [
        [
            round(s["at_s"]),
            s["acked"],
            round(s["rate"]),
            s["refused"],
            s["ingress_rss_mb"],
            s["worker_rss_mb"],
            round(s["store_mb"], 1),
            f"{s['ingress_cpu']:.0%}",
            f"{s['worker_cpu']:.0%}",
            round(s["folded_rate"]),
            s["lag"],
            round(s["rows"].get(CALL_STATES, 0)),
            s["kafka_gb"],
        ]
        for s in report.get("samples", [])
    ]
    print()
    print_table(headers, rows)
    print()
    for name, check in verdict.checks.items():
        print(f"{'ok' if check['passed'] else 'FAILED':6}  {name}: {check['detail']}")
    print(f"\nwritten to {write_results('soak', report)}")
