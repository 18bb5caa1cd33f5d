"""Every private faust name the worker uses, in one place, checked when the worker starts.

faust gives no public way to do five things the worker needs:

- ``Producer._ensure_producer()`` (faust's aiokafka driver): the aiokafka producer faust started.
  ``OutputBatches`` hands it whole batches (``create_batch``/``send_batch``, public aiokafka);
  faust's own producer sends one record at a time.
- ``Producer._settings_extra()``: extra settings of its aiokafka producer; the worker's adds
  ``enable_idempotence`` (faust sets it only inside its transactions).
- ``rocksdb.Store._db_for_partition(partition)``: a partition's RocksDB database, which
  ``TableStore`` reads and writes directly (faust's ``get``/``set`` cost more than the fold).
- ``rocksdb.Store.rocksdb_options``: the options its databases open with, replaced before any
  opens by ones sharing the worker's one memory budget (processors/store_memory.py).
- ``TableManager.recovery`` and its ``completed`` event: set once the tables are recovered, for
  readiness (faust's ``TableManagerT`` declares only the awaiting
  ``wait_until_recovery_completed``).

:func:`check_private_api` fails the start-up, naming what is missing, when an upgrade of faust
took one away; the accessors below are the only code that touches these names, without a
fallback: a memory store has no partition databases by design, a RocksDB store must.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import faust.stores.rocksdb
import faust.tables.manager
import faust.tables.recovery
from aiokafka import AIOKafkaProducer

from callstream.processors.errors import PrivateApiMissing  # raised here; named here too
from callstream.processors.transport import Transport


@dataclass(frozen=True)
class PrivateName:
    """A name the worker uses on a faust class, and what for."""

    owner: type
    name: str
    used_for: str

    def __str__(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name} ({self.used_for})"


REQUIRED: tuple[PrivateName, ...] = (
    PrivateName(Transport.Producer, "_ensure_producer", "OutputBatches' aiokafka producer"),
    PrivateName(Transport.Producer, "_settings_extra", "an idempotent producer"),
    PrivateName(faust.stores.rocksdb.Store, "_db_for_partition", "TableStore's RocksDB reads"),
    PrivateName(faust.stores.rocksdb.Store, "rocksdb_options", "one memory budget for stores"),
    PrivateName(faust.tables.manager.TableManager, "recovery", "readiness"),
    PrivateName(faust.tables.recovery.Recovery, "completed", "readiness"),
)


def _declared(owner: type, name: str) -> bool:
    """``name`` is an attribute of ``owner`` or one of its bases, or declared on one (an
    instance attribute set in ``__init__``, like ``Recovery.completed``, is annotated)."""
    return any(
        name in vars(klass) or name in vars(klass).get("__annotations__", {})
        for klass in owner.__mro__
    )


def check_private_api(required: Iterable[PrivateName] = REQUIRED) -> None:
    """Raise :class:`PrivateApiMissing`, naming each missing name, unless all are there."""
    missing = [str(name) for name in required if not _declared(name.owner, name.name)]
    if missing:
        raise PrivateApiMissing(
            f"faust-streaming {version('faust-streaming')} (aiokafka {version('aiokafka')}) "
            f"lacks what the worker needs: {'; '.join(missing)}. Install the faust-streaming "
            "version pyproject.toml pins, or port processors/private_api.py to this one"
        )


def aiokafka_producer(producer: Any) -> AIOKafkaProducer:
    """The started aiokafka producer under faust's ``app.producer``."""
    found: AIOKafkaProducer = producer._ensure_producer()
    return found


def partition_databases(store: Any) -> Callable[[int], Any] | None:
    """A faust RocksDB store's database of a partition (a ``rocksdict.Rdict``); None for any
    other store (memory: it has none, and is used through faust)."""
    if isinstance(store, faust.stores.rocksdb.Store):
        databases: Callable[[int], Any] = store._db_for_partition
        return databases
    return None


def use_rocksdb_options(store: faust.stores.rocksdb.Store, options: Any) -> None:
    """Open ``store``'s databases with ``options`` (a ``RocksDBOptions``) from now on."""
    if not options.use_rocksdict:
        raise PrivateApiMissing("the worker's RocksDB stores need faust's rocksdict driver")
    store.rocksdb_options = options


def tables_recovered(app: faust.App) -> bool:
    """Whether the worker's tables are recovered (false until its first assignment is)."""
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]  # the concrete manager's
    return bool(recovery.completed.is_set())
