"""How many copies a topic keeps, and how many must have a write before it is acknowledged.

One rule for the local cluster's broker defaults and for the topics the services create: three
copies where there are three brokers or more, and a write acknowledged (acks=all) once two have
it, so one broker may be lost or restarted without losing or refusing an acknowledged record.
"""

from __future__ import annotations

from dataclasses import dataclass

# A production cluster's copies: one broker down for maintenance and one failing still loses
# nothing acknowledged.
PRODUCTION_FACTOR = 3


@dataclass(frozen=True)
class Replication:
    """A replication factor and the ``min.insync.replicas`` that goes with it."""

    factor: int
    min_insync: int

    @classmethod
    def of_factor(cls, factor: int) -> Replication:
        """``min.insync.replicas`` 2 from three copies up (one may be down and writes go on),
        else 1 (with two copies, 2 would refuse every write while either broker is down)."""
        if factor < 1:
            raise ValueError(f"a replication factor must be at least 1, not {factor}")
        return cls(factor, 2 if factor >= PRODUCTION_FACTOR else 1)

    @classmethod
    def for_brokers(cls, brokers: int) -> Replication:
        """As many copies as there are brokers, three at most."""
        return cls.of_factor(min(PRODUCTION_FACTOR, max(brokers, 1)))


SINGLE = Replication.of_factor(1)
