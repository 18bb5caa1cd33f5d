"""The simulator's calls, bodies and delivery plans, without a network."""

from __future__ import annotations

import argparse
import itertools
import re
from collections import Counter
from dataclasses import replace

import orjson
import pytest

from callstream.cli import build_parser
from callstream.schemas.parse import parse_webhook
from callstream.traffic.calls import TARIFF_PER_S, unsigned
from callstream.traffic.plan import FaultRates, _resent, merged
from callstream.traffic.simulate_cli import simulation_of
from callstream.traffic.simulation import Simulation, call_plans
from callstream.traffic.truth import truth_record

START = 1_796_569_795
NO_FAULTS = FaultRates(
    duplicate=0, reorder=0, missing_cdr=0, missing_live=0, corrected_cdr=0, disposition=0.5
)
MOBILE = re.compile(r"^0(3[2-9]|5[689]|7[06-9]|8[1-689]|9[0-8])\d{7}$")
LANDLINE = re.compile(r"^02\d{9}$")


def deliveries(simulation: Simulation) -> list[tuple[float, bytes]]:
    return [(d.at_s, d.body) for d in merged(call_plans(simulation))]


def test_the_same_seed_and_start_give_byte_identical_bodies_and_another_seed_does_not() -> None:
    simulation = Simulation(calls=300, start_s=START, seed=5)
    assert deliveries(simulation) == deliveries(simulation)
    assert deliveries(simulation) != deliveries(replace(simulation, seed=6))


def test_runs_started_at_different_moments_share_no_call_id() -> None:
    # The same seed run twice must not make the pipeline fold two runs' calls into one.
    first = {p.call.call_id for p in call_plans(Simulation(calls=300, start_s=START, seed=5))}
    later = {p.call.call_id for p in call_plans(Simulation(calls=300, start_s=START + 1, seed=5))}
    assert not first & later


def test_every_body_is_a_webhook_the_ingress_accepts_in_time_order() -> None:
    sent = list(merged(call_plans(Simulation(calls=500, start_s=START, rate=20, seed=3))))
    assert [d.at_s for d in sent] == sorted(d.at_s for d in sent)
    for delivery in sent:
        webhook = parse_webhook(delivery.body)
        assert webhook.call_id == delivery.call_id


def test_cdr_fields_agree_with_each_other_as_the_providers_sample_does() -> None:
    plans = list(call_plans(Simulation(calls=400, start_s=START, seed=9, faults=NO_FAULTS)))
    for plan in plans:
        cdr = orjson.loads(plan.deliveries[-1].body)
        call = plan.call
        assert cdr["state"] == "cdr"
        assert cdr["duration"] == cdr["time_end_call"] - cdr["time_start_call"]
        assert cdr["duration"] == call.ring_s + call.talk_s
        assert cdr["record_seconds"] == cdr["answer_sec"] == call.talk_s
        talk = cdr["answer_sec"]
        assert cdr["bill_sec"] == (max(6, talk) if talk else 0)
        if call.direction == "outbound":
            kind = "landline" if LANDLINE.match(call.peer) else "mobile"
            assert cdr["call_out_price"] == round(cdr["bill_sec"] * TARIFF_PER_S[kind], 3)
        else:
            assert cdr["call_out_price"] == 0
        assert cdr["created_date"] <= cdr["last_updated_date"]
        if "disposition" in cdr:
            assert cdr["disposition"] == ("answered" if talk else "cancelled")
        assert cdr["user"][0]["full_name_unsigned"] == unsigned(cdr["create_by"]["name"])
    with_disposition = sum("disposition" in orjson.loads(p.deliveries[-1].body) for p in plans)
    assert 0 < with_disposition < len(plans)
    assert any(orjson.loads(p.deliveries[-1].body)["transfer_histories"] for p in plans)


def test_numbers_names_directions_and_outcomes_look_like_a_vietnamese_call_centre() -> None:
    calls = [p.call for p in call_plans(Simulation(calls=2000, start_s=START, seed=1))]
    customers = [call.peer for call in calls if call.direction != "local"]
    assert all(MOBILE.match(n) or LANDLINE.match(n) for n in customers), customers[:5]
    assert sum(bool(LANDLINE.match(n)) for n in customers) > 0
    directions = Counter(call.direction for call in calls)
    assert directions["inbound"] > directions["outbound"] > directions["local"] > 0
    outcomes = Counter(call.outcome for call in calls)
    assert outcomes["answered"] > outcomes["missed"] > 0
    assert outcomes["abandoned"] > 0
    assert all(call.outcome != "abandoned" or call.direction == "inbound" for call in calls)
    names = {call.agent.name for call in calls}
    assert any(name != unsigned(name) for name in names)  # diacritics, and their unsigned form
    assert unsigned("Trần Văn Tiến Đạt") == "Tran Van Tien Dat"
    talks = sorted(call.talk_s for call in calls if call.answered)
    median, p99 = talks[len(talks) // 2], talks[int(len(talks) * 0.99)]
    assert 30 < median < 300
    assert p99 > 4 * median  # a long tail


def test_calls_arrive_at_the_rate_asked() -> None:
    calls = [p.call for p in call_plans(Simulation(calls=5000, start_s=START, rate=5, seed=2))]
    span = calls[-1].start_s - START
    assert 950 < span < 1050  # 5,000 calls at 5 a second: about 1,000 s


def test_without_faults_each_call_sends_its_live_events_then_its_cdr() -> None:
    for plan in call_plans(Simulation(calls=200, start_s=START, seed=4, faults=NO_FAULTS)):
        states = [orjson.loads(d.body)["state"] for d in plan.deliveries]
        want = ["ringing", "answered", "hangup"] if plan.call.answered else ["ringing", "hangup"]
        assert states == [*want, "cdr"]
        truth = truth_record(plan)
        assert truth["sent"] == {"live": True, "cdr": True}
        assert truth["faults"] == []


def test_each_fault_happens_at_its_rate_and_the_truth_says_which() -> None:
    rates = FaultRates(
        duplicate=0.1, reorder=0.2, missing_cdr=0.1, missing_live=0.1, corrected_cdr=0.1
    )
    plans = list(call_plans(Simulation(calls=3000, start_s=START, seed=8, faults=rates)))
    faults = Counter(fault for plan in plans for fault in set(plan.faults))
    for fault, rate in (("missing_cdr", 0.1), ("corrected_cdr", 0.1 * 0.9)):
        assert abs(faults[fault] / len(plans) - rate) < 0.03, (fault, faults)
    assert faults["answered_before_ringing"] + faults["cdr_before_hangup"] > 0.1 * len(plans)
    for plan in plans:
        kinds = [orjson.loads(d.body)["state"] for d in plan.deliveries]
        assert ("cdr" in kinds) == plan.cdr_sent
        assert ("ringing" in kinds) == plan.live_sent
        assert plan.cdr_sent or plan.live_sent
        if "cdr_before_hangup" in plan.faults:
            assert kinds.index("cdr") < kinds.index("hangup")
        if "answered_before_ringing" in plan.faults:
            assert kinds.index("answered") < kinds.index("ringing")
        if plan.corrected:
            cdrs = [orjson.loads(d.body) for d in plan.deliveries if b'"state":"cdr"' in d.body]
            newest = max(cdrs, key=lambda cdr: cdr["last_updated_date"])
            assert truth_record(plan)["price"] == newest["call_out_price"]


def test_a_resent_cdr_counts_its_retry_and_a_resent_live_event_is_the_same_bytes() -> None:
    assert _resent(b'{"a":1,"send_num_retry":1,"b":2}') == b'{"a":1,"send_num_retry":2,"b":2}'
    assert _resent(b'{"send_num_retry":9}') == b'{"send_num_retry":10}'
    assert _resent(b'{"state":"ringing"}') == b'{"state":"ringing"}'


def test_deliveries_stream_from_an_endless_simulation_without_waiting_for_its_end() -> None:
    endless = Simulation(calls=10**9, start_s=START, rate=50, seed=1)
    first = list(itertools.islice(merged(call_plans(endless)), 1000))
    assert len(first) == 1000


@pytest.mark.parametrize("bad", [{"calls": -1}, {"rate": 0}, {"agents": 1}])
def test_impossible_simulations_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"must|needs"):
        Simulation(**{"calls": 1, "start_s": START, **bad})  # type: ignore[arg-type]


def test_a_fault_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        FaultRates(duplicate=1.5)


def simulate_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["simulate", "--token", "t" * 20, *argv])


def test_simulate_counts_calls_from_duration_and_starts_its_clock_where_its_speed_needs() -> None:
    now = 1_800_000_000.5
    assert simulation_of(simulate_args(), now).calls == 100
    by_duration = simulation_of(simulate_args("--rate", "2", "--duration", "90"), now)
    assert by_duration.calls == 180
    # real time starts now; faster or slower, the arrivals end about now
    assert simulation_of(simulate_args(), now).start_s == int(now)
    fast = simulation_of(simulate_args("--calls", "600", "--rate", "2", "--speed", "0"), now)
    assert fast.start_s == int(now) - 300
    given = simulation_of(simulate_args("--speed", "30", "--start", "1700000000"), now)
    assert given.start_s == 1_700_000_000
    rates = simulation_of(simulate_args("--duplicate-rate", "0.5", "--missing-cdr-rate", "0"), now)
    assert (rates.faults.duplicate, rates.faults.missing_cdr) == (0.5, 0.0)


def test_no_webhook_is_sent_before_what_it_tells_happened_whatever_the_faults() -> None:
    # A CDR is made after its call ended, also when it overtakes the hangup; a body is sent no
    # earlier than the moment it carries.
    rates = FaultRates(duplicate=0.2, reorder=1, missing_cdr=0, missing_live=0, corrected_cdr=0.2)
    for plan in call_plans(Simulation(calls=500, start_s=START, seed=11, faults=rates)):
        for delivery in plan.deliveries:
            body = orjson.loads(delivery.body)
            sent_ms = (START + delivery.at_s) * 1000 + 1  # rounded to the millisecond
            if body["state"] == "cdr":
                assert body["created_date"] >= body["time_end_call"] * 1000, plan.faults
                assert sent_ms >= body["last_updated_date"] - 150, plan.faults
            else:
                assert sent_ms >= body["date_time"], plan.faults
