"""Whether the topics on a cluster are what a service needs, in words an operator can act on.

Pure: what the service wants and what the cluster has go in, the problems come out
(``callstream/kafka/admin.py`` asks the cluster). Two things break the pipeline silently when
wrong: the partition counts of the topics the call-state join reads together (a call whose
event and CDR land on partitions of different numbers is folded into two states, on two
workers), and the cleanup policy (a compacted event topic drops a call's earlier events; a
deleted state topic loses calls after the retention). Retention and the partition counts of
the other topics are the operator's to tune: records go to their key's partition among however
many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from callstream.schemas.topics import CO_PARTITIONED, TopicSpec, topic


@dataclass(frozen=True)
class WantedTopic:
    """A topic a service uses: created like this when missing, checked when present.
    ``joined``: read by the call-state join, so it must have exactly ``partitions``."""

    name: str
    partitions: int
    cleanup_policy: str
    retention_ms: int | None = None  # None: the broker's default
    joined: bool = False

    @classmethod
    def from_spec(cls, spec: TopicSpec, prefix: str, *, joined: bool) -> WantedTopic:
        return cls(
            spec.full_name(prefix), spec.partitions, spec.cleanup_policy, spec.retention_ms, joined
        )


@dataclass(frozen=True)
class FoundTopic:
    """A topic as the cluster describes it."""

    name: str
    partitions: int
    cleanup_policy: str


def registry_topics(names: Iterable[str], prefix: str) -> list[WantedTopic]:
    """The registry's topics of logical ``names``, named with ``prefix``."""
    return [
        WantedTopic.from_spec(topic(name), prefix, joined=name in CO_PARTITIONED) for name in names
    ]


class TopicMismatch(Exception):
    """The topics on the cluster are not what the service needs: it must not start."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"Kafka's topics are not what callstream needs:\n{lines}")


def _policies(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _partition_fix(want: WantedTopic, have: FoundTopic, bootstrap: str) -> str:
    if have.partitions < want.partitions:
        return (
            f"Add partitions: kafka-topics.sh --bootstrap-server {bootstrap} --alter "
            f"--topic {want.name} --partitions {want.partitions} (a call whose records are "
            "already on it may then be split once, so do it while no call is in progress), "
            f"or delete it and start again to have it created with {want.partitions}."
        )
    return (
        "Partitions cannot be removed: delete it (kafka-topics.sh --bootstrap-server "
        f"{bootstrap} --delete --topic {want.name}; its records are lost) and start again to "
        f"have it created with {want.partitions}."
    )


def _partition_problem(
    want: WantedTopic,
    have: FoundTopic,
    joined: Sequence[WantedTopic],
    found: Mapping[str, FoundTopic],
    bootstrap: str,
) -> str:
    """``have`` is joined and its count is not the registry's: say which joined topic differs
    (one with the registry's count first), and how to fix it."""
    others = [found[peer.name] for peer in joined if peer.name != want.name and peer.name in found]
    others.sort(key=lambda peer: peer.partitions != want.partitions)
    peer = next((p for p in others if p.partitions != have.partitions), None)
    if peer is not None:
        why = (
            f"topic {want.name} has {have.partitions} partitions, {peer.name} has "
            f"{peer.partitions}: the join needs equal counts (registry: {want.partitions})."
        )
    else:
        why = (
            f"topic {want.name} has {have.partitions} partitions, the registry says "
            f"{want.partitions}: the join and the worker's table assume {want.partitions}."
        )
    return f"{why} {_partition_fix(want, have, bootstrap)}"


def _policy_problem(want: WantedTopic, have: FoundTopic, bootstrap: str) -> str:
    if "compact" in _policies(want.cleanup_policy):
        why = "it keeps each key's latest record for good"
    else:
        why = "compaction would drop a call's earlier records"
    return (
        f"topic {want.name} has cleanup.policy={have.cleanup_policy}, callstream needs "
        f"{want.cleanup_policy} ({why}). Set it: kafka-configs.sh --bootstrap-server "
        f"{bootstrap} --alter --entity-type topics --entity-name {want.name} "
        f"--add-config cleanup.policy={want.cleanup_policy}"
    )


def topic_problems(
    wanted: Sequence[WantedTopic], found: Mapping[str, FoundTopic], bootstrap: str
) -> list[str]:
    """What is wrong with ``found`` (by name) for a service that uses ``wanted``, each with its
    fix; empty when nothing is. ``bootstrap`` goes into the commands the fixes suggest."""
    joined = [want for want in wanted if want.joined]
    problems = []
    for want in wanted:
        have = found.get(want.name)
        if have is None:
            problems.append(
                f"topic {want.name} does not exist: start again to have it created, or create "
                f"it with {want.partitions} partitions and cleanup.policy={want.cleanup_policy}."
            )
            continue
        if want.joined and have.partitions != want.partitions:
            problems.append(_partition_problem(want, have, joined, found, bootstrap))
        if _policies(have.cleanup_policy) != _policies(want.cleanup_policy):
            problems.append(_policy_problem(want, have, bootstrap))
    return problems
