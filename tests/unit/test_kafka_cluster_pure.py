"""The local cluster's pure parts: each node's properties, the quorum, the ports, the layout
kept between starts, the replication rule, and the DescribeQuorum probe's wire format."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from callstream.cli import build_parser
from callstream.kafka import probe
from callstream.kafka.admin import new_topic
from callstream.kafka.broker import NodeConfig, quorum_voters, server_properties
from callstream.kafka.cluster import ClusterLayout, bootstrap_servers, node_ports
from callstream.kafka.probe import (
    _uvarint,
    decode_quorum_leader,
    encode_describe_quorum_request,
)
from callstream.kafka.replication import Replication
from callstream.kafka.topiccheck import WantedTopic
from callstream.settings import SettingsError, env_replication_factor

LAYOUT = ClusterLayout("abcdefghijklmnopqrstuv", (19092, 19093, 19094), (40001, 40002, 40003))


def _properties(node: NodeConfig) -> dict[str, str]:
    text = server_properties(node, Path(f"/data/node-{node.node_id}/logs"))
    return dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))


def test_voters_name_every_node_by_its_id_and_controller_port() -> None:
    assert quorum_voters([40001]) == "1@127.0.0.1:40001"
    assert quorum_voters(LAYOUT.controller_ports) == (
        "1@127.0.0.1:40001,2@127.0.0.1:40002,3@127.0.0.1:40003"
    )


def test_bootstrap_lists_every_node_and_ports_follow_the_first() -> None:
    assert node_ports(9092, 3) == (9092, 9093, 9094)
    assert bootstrap_servers((9092, 9093, 9094)) == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"
    assert LAYOUT.bootstrap == "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
    with pytest.raises(ValueError, match="at least one node"):
        node_ports(9092, 0)
    with pytest.raises(ValueError, match="not all valid ports"):
        node_ports(65534, 3)


def test_each_node_has_its_own_id_ports_and_log_dir_and_the_same_quorum() -> None:
    configs = [_properties(LAYOUT.node(node_id)) for node_id in LAYOUT.node_ids]
    assert [c["node.id"] for c in configs] == ["1", "2", "3"]
    assert [c["listeners"] for c in configs] == [
        f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
        for port, controller in zip(LAYOUT.ports, LAYOUT.controller_ports, strict=True)
    ]
    assert [c["advertised.listeners"] for c in configs] == [
        f"PLAINTEXT://127.0.0.1:{port}" for port in LAYOUT.ports
    ]
    assert [c["log.dirs"] for c in configs] == [f"/data/node-{i}/logs" for i in (1, 2, 3)]
    voters = quorum_voters(LAYOUT.controller_ports)
    assert {c["controller.quorum.voters"] for c in configs} == {voters}
    assert {c["process.roles"] for c in configs} == {"broker,controller"}


def test_three_nodes_keep_three_copies_and_acknowledge_on_two() -> None:
    config = _properties(LAYOUT.node(2))
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert config[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert config[key] == "2", key
    assert config["unclean.leader.election.enable"] == "false"
    assert config["auto.create.topics.enable"] == "false"


def test_replication_follows_the_broker_count_up_to_three() -> None:
    assert [Replication.for_brokers(n) for n in (0, 1, 2, 3, 5)] == [
        Replication(1, 1),
        Replication(1, 1),
        Replication(2, 1),
        Replication(3, 2),
        Replication(3, 2),
    ]
    assert Replication.of_factor(5) == Replication(5, 2)
    with pytest.raises(ValueError, match="at least 1"):
        Replication.of_factor(0)


def test_created_topics_carry_min_insync_only_when_replicated() -> None:
    want = WantedTopic("t", 6, "delete", retention_ms=1000)
    single = new_topic(want, Replication(1, 1))
    assert single.replication_factor == 1
    assert single.topic_configs == {"cleanup.policy": "delete", "retention.ms": "1000"}
    replicated = new_topic(want, Replication(3, 2))
    assert replicated.replication_factor == 3
    assert replicated.topic_configs["min.insync.replicas"] == "2"


def test_replication_factor_setting_is_optional_and_checked() -> None:
    assert env_replication_factor({}) is None
    assert env_replication_factor({"CALLSTREAM_REPLICATION_FACTOR": " 3 "}) == 3
    with pytest.raises(SettingsError, match="at least 1"):
        env_replication_factor({"CALLSTREAM_REPLICATION_FACTOR": "0"})


def test_the_layout_survives_its_file_and_names_each_node() -> None:
    assert ClusterLayout.from_json(LAYOUT.to_json()) == LAYOUT
    assert LAYOUT.node(3) == NodeConfig(
        3, 19094, 40003, quorum_voters(LAYOUT.controller_ports), Replication(3, 2)
    )


def test_nodes_option_defaults_to_a_single_broker_and_is_bounded() -> None:
    parser = build_parser()
    assert parser.parse_args(["kafka", "start"]).nodes == 1
    assert parser.parse_args(["kafka", "start", "--nodes", "3"]).nodes == 3
    for bad in ("0", "three", "10"):
        with pytest.raises(SystemExit):
            parser.parse_args(["kafka", "start", "--nodes", bad])


def _describe_quorum_response(correlation_id: int, leader_id: int, error: int = 0) -> bytes:
    """A DescribeQuorum v0 response as a controller writes it (voters and observers empty)."""
    name = b"__cluster_metadata"
    partition = struct.pack(">ihiiq", 0, error, leader_id, 7, 42)
    partition += _uvarint(1) + _uvarint(1) + _uvarint(0)  # no voters, no observers, no tags
    topic = _uvarint(len(name) + 1) + name + _uvarint(2) + partition + _uvarint(0)
    return (
        struct.pack(">i", correlation_id)
        + _uvarint(0)
        + struct.pack(">h", 0)
        + (_uvarint(2) + topic + _uvarint(0))
    )


def test_describe_quorum_request_is_v0_for_the_metadata_partition() -> None:
    request = encode_describe_quorum_request(5)
    (size, api_key, version, correlation) = struct.unpack_from(">ihhi", request)
    assert (size, api_key, version, correlation) == (len(request) - 4, 55, 0, 5)
    assert b"__cluster_metadata" in request


def test_describe_quorum_answer_gives_the_leader_or_none() -> None:
    assert decode_quorum_leader(_describe_quorum_response(5, 2), 5) == 2
    assert decode_quorum_leader(_describe_quorum_response(5, -1), 5) is None
    with pytest.raises(ValueError, match="correlation"):
        decode_quorum_leader(_describe_quorum_response(6, 2), 5)
    with pytest.raises(ValueError, match="partition error"):
        decode_quorum_leader(_describe_quorum_response(5, 2, error=6), 5)


def test_metadata_answer_gives_the_topics_each_broker_knows() -> None:
    def string(text: str) -> bytes:
        return struct.pack(">h", len(text)) + text.encode()

    request = probe.encode_metadata_request(3, ["a", "bb"])
    assert request.endswith(struct.pack(">i", 2) + string("a") + string("bb") + b"\x00")
    broker = struct.pack(">i", 1) + string("127.0.0.1") + struct.pack(">ih", 9092, -1)
    partition = struct.pack(">hii", 0, 0, 1) + struct.pack(">iiii", 1, 1, 1, 1)
    known = struct.pack(">h", 0) + string("a") + b"\x00" + struct.pack(">i", 2) + partition * 2
    unknown = struct.pack(">h", 3) + string("bb") + b"\x00" + struct.pack(">i", 0)
    response = struct.pack(">iii", 3, 0, 1) + broker + string("cid") + struct.pack(">i", 1)
    response += struct.pack(">i", 2) + known + unknown
    answer = probe.decode_metadata(response, 3)
    assert answer.brokers == [probe.BrokerInfo(1, "127.0.0.1", 9092)]
    assert answer.topics == {"a": 2}  # "bb": unknown to this broker yet
