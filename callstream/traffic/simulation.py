"""A simulation run's calls and their plans, from its settings alone: the same settings give
the same calls and byte-identical bodies."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from callstream.traffic.calls import call_centre, simulated_calls
from callstream.traffic.plan import CallPlan, FaultRates, plan_call


@dataclass(frozen=True, slots=True)
class Simulation:
    """``calls`` arriving at ``rate`` a second (a Poisson process) from ``start_s`` (epoch
    seconds), on ``hotlines`` hotlines answered by ``agents`` agents."""

    calls: int
    start_s: int
    rate: float = 1.0
    seed: int = 1
    hotlines: int = 4
    agents: int = 16
    faults: FaultRates = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        if self.calls < 0:
            raise ValueError(f"calls must be 0 or more, not {self.calls}")
        if not self.rate > 0:
            raise ValueError(f"rate must be above 0 calls a second, not {self.rate}")
        if self.hotlines < 1 or self.agents < 2:
            raise ValueError("a call centre needs a hotline and two agents at least")


def call_plans(simulation: Simulation) -> Iterator[CallPlan]:
    """Each call's plan in start order; deliveries counted from ``start_s``."""
    seed = simulation.seed
    centre = call_centre(random.Random(f"{seed}:centre"), simulation.hotlines, simulation.agents)
    # The start seeds the calls too: two runs from different moments never share a call id.
    arrivals = simulated_calls(
        random.Random(f"{seed}:{simulation.start_s}:calls"),
        centre,
        simulation.start_s,
        simulation.rate,
    )
    for index, call in zip(range(simulation.calls), arrivals, strict=False):
        rng = random.Random(f"{seed}:{simulation.start_s}:delivery:{index}")
        yield plan_call(call, centre, rng, simulation.faults, simulation.start_s)
