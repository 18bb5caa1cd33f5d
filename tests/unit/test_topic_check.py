"""The topic check: what a service needs against what the cluster has, problems in words."""

from __future__ import annotations

from pathlib import Path

from callstream.kafka.topiccheck import (
    FoundTopic,
    TopicMismatch,
    WantedTopic,
    registry_topics,
    topic_problems,
)
from callstream.processors.app import TABLE, changelog_topic_name, create_worker_app
from callstream.processors.runtime import worker_topics
from callstream.processors.settings import WorkerSettings
from callstream.schemas.topics import CO_PARTITIONED, TOPICS, topic

BOOTSTRAP = "kafka-1:9092"
EVENTS, CDRS = "p.omicall.call-events", "p.omicall.cdrs"


def _wanted() -> list[WantedTopic]:
    return registry_topics([spec.name for spec in TOPICS], "p.")


def _found(**changes: tuple[int, str]) -> dict[str, FoundTopic]:
    """The registry's topics as created, then ``changes``: cluster name -> (count, policy)."""
    found = {w.name: FoundTopic(w.name, w.partitions, w.cleanup_policy) for w in _wanted()}
    for name, (partitions, policy) in changes.items():
        found[name] = FoundTopic(name, partitions, policy)
    return found


def test_topics_as_the_registry_says_have_no_problem() -> None:
    assert topic_problems(_wanted(), _found(), BOOTSTRAP) == []


def test_a_joined_topic_with_fewer_partitions_names_both_counts_and_how_to_add_partitions() -> None:
    problems = topic_problems(_wanted(), _found(**{EVENTS: (3, "delete")}), BOOTSTRAP)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"topic {EVENTS} has 3 partitions, {CDRS} has 6: the join needs equal counts "
        "(registry: 6). Add partitions: kafka-topics.sh --bootstrap-server kafka-1:9092 "
        f"--alter --topic {EVENTS} --partitions 6 "
    )


def test_a_joined_topic_with_more_partitions_must_be_recreated() -> None:
    (problem,) = topic_problems(_wanted(), _found(**{CDRS: (12, "delete")}), BOOTSTRAP)
    assert problem.startswith(f"topic {CDRS} has 12 partitions, {EVENTS} has 6:")
    assert "Partitions cannot be removed" in problem
    assert f"kafka-topics.sh --bootstrap-server kafka-1:9092 --delete --topic {CDRS}" in problem
    assert "--alter" not in problem


def test_joined_topics_that_agree_with_each_other_but_not_the_registry_are_wrong() -> None:
    found = _found(**{EVENTS: (3, "delete"), CDRS: (3, "delete")})
    problems = topic_problems(_wanted(), found, BOOTSTRAP)
    assert [p.split(":")[0] for p in problems] == [
        f"topic {EVENTS} has 3 partitions, the registry says 6",
        f"topic {CDRS} has 3 partitions, the registry says 6",
    ]


def test_partition_counts_of_topics_outside_the_join_are_the_operators() -> None:
    found = _found(**{"p.callstream.metrics": (2, "delete"), "p.omicall.rejected": (1, "delete")})
    assert topic_problems(_wanted(), found, BOOTSTRAP) == []


def test_a_compacted_topic_that_deletes_and_an_event_topic_that_compacts_are_named() -> None:
    found = _found(
        **{"p.callstream.call-state": (6, "delete"), EVENTS: (6, "compact,delete")},
    )
    problems = topic_problems(_wanted(), found, BOOTSTRAP)
    assert len(problems) == 2
    events, state = problems
    assert events.startswith(f"topic {EVENTS} has cleanup.policy=compact,delete, callstream needs")
    assert state.startswith(
        "topic p.callstream.call-state has cleanup.policy=delete, callstream needs compact"
    )
    assert state.endswith(
        "kafka-configs.sh --bootstrap-server kafka-1:9092 --alter --entity-type topics "
        "--entity-name p.callstream.call-state --add-config cleanup.policy=compact"
    )
    # The order of a policy's parts does not matter.
    found = _found(**{"p.callstream.call-state": (6, " compact")})
    assert topic_problems(_wanted(), found, BOOTSTRAP) == []


def test_a_missing_topic_is_a_problem() -> None:
    found = _found()
    del found[CDRS]
    (problem,) = topic_problems(_wanted(), found, BOOTSTRAP)
    assert problem.startswith(f"topic {CDRS} does not exist")


def test_the_mismatch_error_lists_every_problem() -> None:
    error = TopicMismatch(["one", "two"])
    assert str(error) == "Kafka's topics are not what callstream needs:\n  - one\n  - two"


def test_the_registry_join_has_equal_counts() -> None:
    assert len({topic(name).partitions for name in CO_PARTITIONED}) == 1
    assert {w.name for w in _wanted() if w.joined} == {EVENTS, CDRS}


def test_the_worker_checks_its_internal_topics_in_the_join(tmp_path: Path) -> None:
    settings = WorkerSettings(topic_prefix="p.", app_id="p.worker", data_dir=tmp_path)
    wanted = {want.name: want for want in worker_topics(settings)}
    commands, changelog = wanted["p.worker-commands"], wanted["p.worker-call-state-changelog"]
    assert commands.joined
    assert changelog.joined
    assert commands.partitions == changelog.partitions == topic(CO_PARTITIONED[0]).partitions
    assert changelog.cleanup_policy == "compact"
    # The name is faust's: the worker creates the changelog before faust would.
    app = create_worker_app(settings)
    table_changelog = app.tables[TABLE].changelog_topic.get_topic_name()
    assert table_changelog == changelog_topic_name(settings.app_id) == changelog.name
