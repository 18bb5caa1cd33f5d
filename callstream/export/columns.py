"""The exported tables' columns, made from the published record types (callstream/schemas/), and
their rows: one column per field, named as in the JSON schema, typed for SQL, and next to each
epoch-milliseconds field a TIMESTAMPTZ of it (``started_at`` beside ``started_at_ms``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import inspect

from callstream.schemas.calls import CompletedCall
from callstream.schemas.metrics import WindowMetrics

EPOCH_MS = "epoch milliseconds"  # the description of the schemas' Millis fields
SQL_TYPES: dict[type[inspect.Type], str] = {
    inspect.StrType: "VARCHAR",
    inspect.LiteralType: "VARCHAR",
    inspect.IntType: "INTEGER",  # counts and revisions; sums of them are BIGINT
    inspect.FloatType: "DOUBLE",
    inspect.BoolType: "BOOLEAN",
}

S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class Column:
    """``name`` (``sql_type``) filled from the record's ``field``; a ``timestamp`` column is
    the TIMESTAMPTZ of the field's epoch milliseconds."""

    name: str
    sql_type: str
    field: str
    timestamp: bool = False


def _bare(kind: inspect.Type) -> tuple[inspect.Type, str | None]:
    """The type without ``| None`` and its metadata, and its description if it has one."""
    description = None
    if isinstance(kind, inspect.UnionType):
        types = [t for t in kind.types if not isinstance(t, inspect.NoneType)]
        if len(types) != 1:
            raise TypeError(f"no SQL column for a union of {types}")
        kind = types[0]
    if isinstance(kind, inspect.Metadata):
        description = (kind.extra_json_schema or {}).get("description")
        kind = kind.type
    return kind, description


def columns_of(record_type: type[msgspec.Struct]) -> tuple[Column, ...]:
    """The columns of a table of ``record_type``'s records, in the order of its fields."""
    columns: list[Column] = []
    for field in inspect.type_info(record_type).fields:  # type: ignore[attr-defined]
        kind, description = _bare(field.type)
        sql_type = SQL_TYPES.get(type(kind))
        if sql_type is None:
            raise TypeError(f"no SQL column for {record_type.__name__}.{field.name}: {kind}")
        name = field.encode_name
        if isinstance(kind, inspect.IntType) and description == EPOCH_MS and name.endswith("_ms"):
            sql_type = "BIGINT"
            columns.append(Column(name.removesuffix("_ms"), "TIMESTAMPTZ", field.name, True))
        columns.append(Column(name, sql_type, field.name))
    return tuple(columns)


@dataclass(frozen=True)
class Table(Generic[S]):
    """An exported table: its name, its records' type and the order of its rows."""

    name: str
    record_type: type[S]
    order: Callable[[S], tuple[Any, ...]]

    @property
    def columns(self) -> tuple[Column, ...]:
        return columns_of(self.record_type)

    def value_columns(self) -> list[Column]:
        """The columns that take values; a timestamp column is made from its field's."""
        return [column for column in self.columns if not column.timestamp]

    def rows(self, records: Sequence[S]) -> list[list[Any]]:
        """The records in the table's order, as one list of values per value column (a value
        column per field, in the fields' order)."""
        ordered = sorted(records, key=self.order)
        if not ordered:
            return [[] for _column in self.value_columns()]
        return [list(values) for values in zip(*map(msgspec.structs.astuple, ordered), strict=True)]


CALLS: Table[CompletedCall] = Table(
    "calls", CompletedCall, lambda call: (call.started_at_ms or 0, call.call_id)
)
METRIC_WINDOWS: Table[WindowMetrics] = Table(
    "metric_windows",
    WindowMetrics,
    lambda w: (w.dimension, w.value, w.window, w.window_start_ms),
)
