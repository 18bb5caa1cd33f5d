"""Any worker answers any key: a request for a key whose partition another worker owns is sent
on to that worker, and its answer passed back.

The partition is the key's input partition (murmur2, as every table is partitioned like the
inputs), its owner the worker whose faust assignment holds that partition of the call-state
table's changelog (``app.router.table_metadata``, public faust API; every worker learns the
whole group's assignment, each member's ``canonical_url`` included, at every rebalance). faust's
own ``app.table_route`` does the same lookup but passes back only the body and content type,
sets no timeout, and would send a request round in a loop between two workers that disagree
for a moment during a rebalance; here a request that was sent on once is never sent on again
(503, retry), and a worker that does not answer in time gives a 503 too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from yarl import URL

from callstream.webapp import Refusal

FORWARDED_BY = "X-Callstream-Forwarded-By"  # the worker that sent the request on
ANSWERED_BY = "X-Callstream-Answered-By"  # the worker whose table answered
FORWARD_TIMEOUT_S = 10.0
RETRY_AFTER_S = "1"
# What an answer carries besides its status and body.
PASSED_HEADERS = ("Content-Type", "Content-Disposition", "Retry-After", ANSWERED_BY)

# faust's HostToPartitionMap: worker URL -> topic -> partitions it owns.
Distribution = Mapping[str, Mapping[str, Sequence[int]]]


class Owners(Protocol):
    """Who owns which partition, as this worker last learnt it."""

    @property
    def own_url(self) -> str:
        """The URL this worker advertises (faust's ``canonical_url``)."""
        ...

    def owner(self, partition: int) -> str | None:
        """The URL of the worker owning ``partition``; ``None`` while none does (before the
        first assignment)."""
        ...


def owner_of(distribution: Distribution, partition: int) -> str | None:
    for url, topics in distribution.items():
        if any(partition in partitions for partitions in topics.values()):
            return url
    return None


def same_worker(url: str, other: str) -> bool:
    """Two advertised URLs name the same worker: same host and port."""
    first, second = URL(url), URL(other)
    return (first.host, first.port) == (second.host, second.port)


class TableOwners:
    """:class:`Owners` from a faust app's assignment of a table's changelog partitions."""

    def __init__(self, app: Any, table: str) -> None:
        self.app = app  # faust.App
        self.table = table

    @property
    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    def owner(self, partition: int) -> str | None:
        return owner_of(self.app.router.table_metadata(self.table), partition)


def not_ready(detail: str) -> Refusal:
    """503 ``not_ready``: retry in a second."""
    return Refusal(503, "not_ready", detail, {"Retry-After": RETRY_AFTER_S})


class Forwarder:
    """Sends a request on to the owner of its partition; owns the HTTP client that does."""

    def __init__(self, owners: Owners, timeout_s: float = FORWARD_TIMEOUT_S) -> None:
        self.owners = owners
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def answer_elsewhere(self, request: web.Request, partition: int) -> web.Response | None:
        """``None`` when this worker owns ``partition`` (it answers itself); else the owner's
        answer. Raises a 503 :class:`Refusal` while no worker owns it, when the request was
        already sent on once (the owner moved meanwhile), or when the owner does not answer."""
        owner = self.owners.owner(partition)
        if owner is None:
            raise not_ready(f"no worker owns partition {partition} yet (the group is forming)")
        own = self.owners.own_url
        if same_worker(owner, own):
            return None
        if FORWARDED_BY in request.headers:
            raise not_ready(f"partition {partition} is moving between workers")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        target = URL(owner).join(request.rel_url)
        try:
            async with self._session.request(
                request.method, target, headers={FORWARDED_BY: own}, allow_redirects=False
            ) as answer:
                body = await answer.read()
                headers = {
                    name: answer.headers[name] for name in PASSED_HEADERS if name in answer.headers
                }
                return web.Response(status=answer.status, body=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Refusal(
                503,
                "owner_unavailable",
                f"the worker owning partition {partition} ({owner}) did not answer: "
                f"{type(exc).__name__}",
                {"Retry-After": RETRY_AFTER_S},
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
