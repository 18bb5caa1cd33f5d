"""``callstream simulate``: realistic OMICall traffic with its ground truth, posted to an
ingress (docs/traffic.md, "simulate")."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from callstream.traffic.plan import CallPlan, FaultRates, merged
from callstream.traffic.replay_cli import Notes, replay_code
from callstream.traffic.simulation import Simulation, call_plans
from callstream.traffic.target import TargetError, add_target_arguments, post_settings
from callstream.traffic.truth import truth_record

if TYPE_CHECKING:
    from callstream.traffic.poster import PostSettings

FAULTS = {
    "duplicate": "a webhook re-sent (a CDR's send_num_retry + 1)",
    "reorder": "a call's CDR before its hangup, or answered before ringing",
    "missing_cdr": "a call whose CDR never comes",
    "missing_live": "a call whose live events never come",
    "corrected_cdr": "a CDR re-issued later with a newer last_updated_date",
}


def add_simulate_cli(verbs: Any) -> None:
    parser = verbs.add_parser(
        "simulate",
        help="realistic OMICall traffic with its ground truth, posted to an ingress",
        description="Simulated calls (Vietnamese numbers, hotlines, agents; answered, missed "
        "and abandoned) with the provider's delivery faults, posted to an ingress as OMICall "
        "would. The same --seed and --start give byte-identical bodies.",
    )
    add_target_arguments(parser)
    how_many = parser.add_mutually_exclusive_group()
    how_many.add_argument("--calls", type=int, help="how many calls (default 100, or --duration)")
    parser.add_argument(
        "--rate", type=float, default=1.0, help="calls starting a second (default 1)"
    )
    how_many.add_argument(
        "--duration", type=float, help="seconds of arrivals: --rate x --duration calls"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start",
        type=int,
        help="epoch seconds of the traffic's clock at the run's start (default: now at --speed "
        "1; at any other speed, so long ago that the calls' arrivals end now)",
    )
    parser.add_argument("--hotlines", type=int, default=4)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--out", type=Path, help="write the ground truth here (JSON lines)")
    defaults = FaultRates()
    for name, what in FAULTS.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}-rate",
            dest=name,
            type=float,
            default=getattr(defaults, name),
            help=f"{what} (share of calls, default {getattr(defaults, name)})",
        )
    parser.set_defaults(func=cmd_simulate)


def simulation_of(args: argparse.Namespace, now_s: float) -> Simulation:
    if args.calls is not None:
        calls = args.calls
    elif args.duration is not None:
        calls = math.ceil(args.rate * args.duration)
    else:
        calls = 100
    start = args.start
    if start is None:
        # Real time starts now; any other speed would run the traffic's clock past the wall's
        # (windows in the future, outside the query API's default range): its arrivals end now.
        start = int(now_s - (0 if args.speed == 1 else calls / args.rate))
    faults = FaultRates(**{name: getattr(args, name) for name in FAULTS})
    return Simulation(
        calls=calls,
        start_s=start,
        rate=args.rate,
        seed=args.seed,
        hotlines=args.hotlines,
        agents=args.agents,
        faults=faults,
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    from callstream.traffic.poster import post_deliveries
    from callstream.traffic.progressbar import ProgressBar

    try:
        simulation = simulation_of(args, time.time())
        settings: PostSettings = post_settings(args, os.environ)
    except (TargetError, ValueError) as invalid:
        print(f"callstream: simulate: error: {invalid}", file=sys.stderr)
        return 2
    calls = 0

    def planned(plans: Iterable[CallPlan], out: IO[bytes] | None) -> Iterator[CallPlan]:
        """The plans, counted, each one's truth written to ``out`` as it is planned."""
        nonlocal calls
        for plan in plans:
            calls += 1
            if out is not None:
                out.write(orjson.dumps(truth_record(plan)) + b"\n")
            yield plan

    with ExitStack() as stack:
        out = stack.enter_context(args.out.open("wb")) if args.out else None
        bar = stack.enter_context(ProgressBar("simulate"))
        deliveries = merged(planned(call_plans(simulation), out))
        notes = Notes(bar)  # names refusals and failures (why no answer came)
        summary = asyncio.run(
            post_deliveries(deliveries, settings, on_result=notes.result, progress=bar)
        )
    bar.finish(summary, {"calls": calls})
    print(orjson.dumps({"calls": calls, **summary.counts()}).decode())
    return replay_code(summary, 0)
