"""What simulated calls really were: a call centre's hotlines, agents and customers, and calls
drawn from plausible distributions. The ground truth ``simulate --out`` writes comes from here,
not from the processors' code (docs/traffic.md, "simulate").

Pure: a seeded ``random.Random`` in, calls out; the same seed gives the same calls.
"""

from __future__ import annotations

import math
import random
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Direction = Literal["inbound", "outbound", "local"]
Outcome = Literal["answered", "missed", "abandoned"]
ENDED_BY_CUSTOMER = "end_call_by_customer"
ENDED_BY_AGENT = "end_call_by_agent"

# Per-second prices by direction and the customer's network (VND; the provider's sample bills
# 6 s of an outbound mobile call 55.002). Inbound and local calls cost the call centre nothing.
TARIFF_PER_S = {"mobile": 9.167, "landline": 7.333}
MOBILE_PREFIXES = {
    "viettel": ("086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039"),
    "mobifone": ("089", "090", "093", "070", "076", "077", "078", "079"),
    "vinaphone": ("088", "091", "094", "081", "082", "083", "084", "085"),
}
LANDLINE_AREAS = ("024", "028", "0236", "0292")  # Hà Nội, TP.HCM, Đà Nẵng, Cần Thơ
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi")
MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Thanh", "Đức", "Thu", "Quốc")
GIVEN = ("Tiến", "Hương", "Dũng", "Lan", "Hùng", "Trang", "Phúc", "Yến", "Khoa", "Thảo", "Đạt")


def unsigned(text: str) -> str:
    """Vietnamese without its diacritics, as the provider sends beside a name (Tiến -> Tien)."""
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(char for char in plain if not unicodedata.combining(char))


@dataclass(frozen=True, slots=True)
class Agent:
    extension: str
    name: str
    hotline: str  # the hotline whose calls the agent takes


@dataclass(frozen=True, slots=True)
class Hotline:
    number: str  # as the provider writes it: international (8428...) or national (1900...)
    answer_share: float  # of inbound calls, how many an agent answers
    patience_s: float  # median wait before an unanswered inbound caller hangs up


@dataclass(frozen=True, slots=True)
class CallCentre:
    hotlines: tuple[Hotline, ...]
    agents: tuple[Agent, ...]
    tenant_id: str
    domain: str


def call_centre(rng: random.Random, hotlines: int = 4, agents: int = 16) -> CallCentre:
    """Hotlines with answer rates of their own, and agents with Vietnamese names."""
    numbers = ["842899959300", "842471001234", "19006789", "0868694566", "842363123456"]
    lines = tuple(
        Hotline(
            number=numbers[index % len(numbers)] + ("" if index < len(numbers) else str(index)),
            answer_share=rng.uniform(0.6, 0.92),
            patience_s=rng.uniform(15, 45),
        )
        for index in range(hotlines)
    )
    people = tuple(
        Agent(
            extension=str(100 + index),
            name=f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}",
            hotline=lines[index % len(lines)].number,
        )
        for index in range(agents)
    )
    return CallCentre(lines, people, tenant_id=_hex(rng, 24), domain="contact18")


@dataclass(frozen=True, slots=True)
class Customer:
    number: str  # national form, 0xxxxxxxxx
    network: str  # "viettel", ..., or "landline"
    name: str

    @property
    def kind(self) -> str:
        return "landline" if self.network == "landline" else "mobile"


def customer(rng: random.Random) -> Customer:
    name = f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}"
    if rng.random() < 0.85:
        network = rng.choice(sorted(MOBILE_PREFIXES))
        prefix = rng.choice(MOBILE_PREFIXES[network])
        return Customer(prefix + _digits(rng, 10 - len(prefix)), network, name)
    area = rng.choice(LANDLINE_AREAS)
    return Customer(area + _digits(rng, 11 - len(area)), "landline", name)


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    """One call as it really happened: whole seconds, as the provider's timestamps are."""

    call_id: str
    direction: Direction
    hotline: str | None  # local calls use none
    agent: Agent  # who took or made the call (inbound: the extension that rang)
    peer: str  # the customer's number, or the called extension of a local call
    customer: Customer | None
    start_s: int
    ring_s: int
    talk_s: int  # 0: not answered
    ended_by: str
    transferred: bool

    @property
    def answered(self) -> bool:
        return self.talk_s > 0

    @property
    def duration_s(self) -> int:
        return self.ring_s + self.talk_s

    @property
    def outcome(self) -> Outcome:
        """docs/metrics.md's definitions: an unanswered inbound call the customer ended is
        abandoned, any other unanswered call missed."""
        if self.answered:
            return "answered"
        inbound_by_customer = self.direction == "inbound" and self.ended_by == ENDED_BY_CUSTOMER
        return "abandoned" if inbound_by_customer else "missed"

    @property
    def bill_s(self) -> int:
        """The carrier's billing: a first block of 6 seconds, then per second."""
        return max(6, self.talk_s) if self.answered else 0

    @property
    def price(self) -> float:
        """What an outbound call costs the call centre (``call_out_price``), by the tariff."""
        if self.direction != "outbound" or self.customer is None:
            return 0.0
        return round(self.bill_s * TARIFF_PER_S[self.customer.kind], 3)


def simulated_calls(
    rng: random.Random, centre: CallCentre, start_s: int, rate: float
) -> Iterator[SimulatedCall]:
    """Calls arriving as a Poisson process of ``rate`` calls a second from ``start_s``, in
    start order, without end."""
    clock = float(start_s)
    directions: list[Direction] = ["inbound", "outbound", "local"]
    while True:
        clock += rng.expovariate(rate)
        direction = rng.choices(directions, weights=(0.6, 0.35, 0.05))[0]
        yield _call(rng, centre, int(clock), direction)


def _call(
    rng: random.Random, centre: CallCentre, start_s: int, direction: Direction
) -> SimulatedCall:
    agent = rng.choice(centre.agents)
    line = next(line for line in centre.hotlines if line.number == agent.hotline)
    call_id = _uuid4(rng)
    if direction == "local":
        other = rng.choice([a for a in centre.agents if a is not agent] or [agent])
        answered = rng.random() < 0.8
        ring, ended_by = _lognormal(rng, 6, 0.5, 1, 60), ENDED_BY_AGENT
        talk = _lognormal(rng, 45, 0.9, 1, 1800) if answered else 0
        return SimulatedCall(
            call_id,
            direction,
            None,
            agent,
            other.extension,
            None,
            start_s,
            ring,
            talk,
            ended_by,
            False,
        )
    who = customer(rng)
    if direction == "inbound":
        answered = rng.random() < line.answer_share
        if answered:
            ring = _lognormal(rng, 9, 0.7, 1, 180)
        else:
            ring = _lognormal(rng, line.patience_s, 0.6, 2, 300)
    else:
        answered = rng.random() < 0.65  # customers called out answer less often
        ring = _lognormal(rng, 12, 0.5, 2, 60) if answered else rng.randint(20, 45)
    talk = _lognormal(rng, 95, 1.0, 1, 3600) if answered else 0
    by_customer = rng.random() < (0.55 if answered else 0.85 if direction == "inbound" else 0.2)
    return SimulatedCall(
        call_id,
        direction,
        line.number,
        agent,
        who.number,
        who,
        start_s,
        ring,
        talk,
        ENDED_BY_CUSTOMER if by_customer else ENDED_BY_AGENT,
        transferred=answered and direction == "inbound" and rng.random() < 0.05,
    )


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    """Whole seconds with a long right tail, as ring and talk times have, within [low, high]."""
    return max(low, min(high, round(rng.lognormvariate(math.log(median), sigma))))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def _hex(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(count))


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
