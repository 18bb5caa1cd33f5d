"""The topic registry: the contract's names, prefixes, versions."""

from __future__ import annotations

import pytest

from callstream.schemas.calls import LiveCall
from callstream.schemas.topics import TOPICS, TopicSpec, topic, topic_for_kind, topic_names

CONTRACT = {
    "omicall.call-events",
    "omicall.cdrs",
    "omicall.rejected",
    "callstream.call-state",
    "callstream.calls-completed",
    "callstream.live-calls",
    "callstream.metrics",
}


def test_the_registry_holds_the_contract_topics() -> None:
    assert {spec.name for spec in TOPICS} == CONTRACT
    assert len(TOPICS) == len(CONTRACT)


def test_prefix_goes_in_front_of_every_name() -> None:
    names = topic_names("staging.")
    assert names == {name: f"staging.{name}" for name in CONTRACT}
    assert topic_names() == {name: name for name in CONTRACT}


def test_compacted_topics_keep_values_forever() -> None:
    compacted = {spec.name for spec in TOPICS if spec.cleanup_policy == "compact"}
    assert compacted == {"callstream.call-state", "callstream.live-calls"}
    assert all(topic(name).retention_ms == -1 for name in compacted)
    assert {spec.name for spec in TOPICS if spec.tombstones} == {"callstream.live-calls"}


def test_provider_kinds_map_to_their_raw_topics() -> None:
    assert topic(topic_for_kind("event")).as_received
    assert topic(topic_for_kind("cdr")).key == "transaction_id"


@pytest.mark.parametrize(("name", "version"), [("x.v2", 1), ("x", 2), ("x.v3", 2)])
def test_a_version_the_name_does_not_carry_is_refused(name: str, version: int) -> None:
    with pytest.raises(ValueError, match="the name must say so"):
        TopicSpec(name=name, description="", key="k", value=LiveCall, version=version)


def test_a_v2_topic_is_accepted() -> None:
    spec = TopicSpec(
        name="callstream.live-calls.v2", description="", key="k", value=LiveCall, version=2
    )
    assert spec.full_name("p.") == "p.callstream.live-calls.v2"
