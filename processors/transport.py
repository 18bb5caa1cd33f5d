"""faust's aiokafka transport, with a consumer that never skips records it dropped.

While its flow is stopped (a rebalance, a table recovery) faust drops the records it has
fetched, then seeks every partition back to its committed offset. aiokafka's seek goes back
only to a committed offset above 0: a partition with nothing committed yet stays where the
dropped fetch left it, and those records are never processed (seen in the worker tests: a
worker joining a group, or restarted after a kill, lost the calls' first events). This consumer
seeks such partitions to their start (offset 0, or the log's start through
``auto.offset.reset=earliest``); processing them again changes nothing, the fold being
idempotent.

Its producer is idempotent (faust's is only inside transactions).

It also delivers nothing a resumed partition fetches until faust resumes its consumer's flow.
faust ends a recovery by resuming the stream partitions, seeking them to their committed
offsets, then resuming its flow control, which empties the agents' queues, then the consumer's
flow. That flow already runs (it read the changelogs), so what was fetched in between went to
those queues and was emptied away, yet faust counted it as read: fetched again after the seek,
it was dropped as read before (faust-streaming#596; seen in the worker tests: a worker taking
over partitions lost one call's ringing or CDR). Every faust call that resumes partitions is
followed by resuming its flow control and then the consumer's flow, so this consumer stops the
flow when partitions resume.

faust finds the transport by the broker URL's scheme, ``callstream://``, registered in the
entry-point namespace ``faust.transports`` that faust reads for third-party transports
(pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import faust.transport
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

SCHEME = "callstream"


class Consumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer; partitions with no committed offset seek to their start, and
    resumed partitions deliver nothing until faust resumes the flow."""

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        self.stop_flow()  # faust's resume_flow() follows, once its flow control emptied queues
        super().resume_partitions(tps)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        for partition, offset in committed.items():
            if not offset:  # None (nothing committed) or 0: aiokafka did not seek
                await self.seek(partition, 0)
        return committed


class Producer(faust_aiokafka.Producer):
    """faust's aiokafka producer, idempotent with acks=all: a batch retried after a lost
    answer (a leader moving, a timeout) is not written twice. faust asks for that only inside
    its transactions (exactly_once), which the worker does not use."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class Transport(faust_aiokafka.Transport):
    """faust's aiokafka transport with :class:`Consumer` and :class:`Producer`."""

    Consumer = Consumer
    Producer = Producer


def broker_urls(bootstrap_servers: str) -> list[str]:
    """faust's broker URLs for ``bootstrap_servers``, on this transport."""
    return [f"{SCHEME}://{server.strip()}" for server in bootstrap_servers.split(",") if server]


def check_transport() -> None:
    """Fail at start-up, loudly, when faust would not use this transport for ``callstream://``
    (the package's entry point missing: installed without its metadata)."""
    try:
        found: Any = faust.transport.by_url(f"{SCHEME}://localhost")
    except (ImportError, AttributeError, ValueError):
        found = None
    if found is not Transport:
        raise RuntimeError(
            f"faust finds no callstream transport for {SCHEME}:// (it found {found!r}): "
            "reinstall callstream (pip install -e .) so that its faust.transports entry point "
            "is registered"
        )
