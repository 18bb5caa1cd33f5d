"""Turn a webhook body into a typed live event or CDR, or a :class:`WebhookParseError`.

Pure: bytes in, a :class:`Webhook` or an error out. Lenient where the provider may be loose
(numeric strings for numbers, numbers for ids, unknown fields kept), strict where a consumer
could be misled (see docs/schemas.md for every rule).
"""

from __future__ import annotations

import functools
import operator
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
import msgspec.inspect
import orjson

from callstream.schemas.errors import ErrorCode, PayloadKind, WebhookParseError
from callstream.schemas.jsonsafe import MAX_DEPTH, decode_object
from callstream.schemas.omicall import (
    CDR_STATE,
    LIVE_STATES,
    CallDetailRecord,
    LiveCallEvent,
    ProviderPayload,
)


class Webhook(msgspec.Struct, frozen=True, gc=False):
    """A validated webhook: the typed ``payload`` and the body it came from.

    :attr:`raw` is the decoded body, with every field, known or not, so nothing the provider
    sent is lost; ids that arrived as numbers are already strings in it.
    """

    payload: ProviderPayload
    body: bytes
    decoded: dict[str, Any] | None = None  # set by the precise path; None after the fast one

    @property
    def raw(self) -> dict[str, Any]:
        """The decoded body (decoded again on each use when the fast path took it)."""
        return self.decoded if self.decoded is not None else decode_object(self.body)

    @property
    def kind(self) -> PayloadKind:
        """``"event"`` for a live call-state event, ``"cdr"`` for a call detail record."""
        return self.payload.kind

    @property
    def call_id(self) -> str:
        """``call_uuid`` of an event, ``transaction_id`` of a CDR: the same id for one call."""
        return self.payload.call_id

    @property
    def extra(self) -> dict[str, Any]:
        """The fields the model does not know, as received."""
        known = self.payload.__struct_fields__
        return {key: value for key, value in self.raw.items() if key not in known}


def parse_webhook(body: bytes) -> Webhook:
    """Decode and validate one webhook body.

    Raises :class:`WebhookParseError` for every refusal and never another exception.

    The fast path, inline because it is the ingress's and the worker's hot path: msgspec's
    typed decode, kept only for a body shown to hold only known fields, each once and none
    null, with nesting and integers within the limits; :func:`parse_webhook_precisely` decides
    everything else. The typed decode skips unknown fields unchecked and lets a repeated key
    win silently. Every key is followed by a ':' and the other colons sit in strings: a body
    whose colons number its non-null fields has exactly those keys. Otherwise, with no
    backslash its strings decode to themselves, and it has exactly the payload's keys when its
    other colons are those of the payload's fields re-encoded (their text, and the keys and text
    of their containers). A CDR that sends every field, as the provider's does, decodes into
    :func:`_complete`'s model first: its values hold no ``None`` but in the one field the
    webhook may lack (``disposition``), so only that one needs a count.
    """
    first = _DECODE_COMPLETE_CDR if len(body) > _CDR_LIKELY_BYTES else _DECODE_EVENT
    try:
        try:
            payload = first(body)
        except msgspec.ValidationError:
            payload = _DECODE_CDR(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return parse_webhook_precisely(body)
    values = _astuple(payload)
    if type(payload) is _COMPLETE_CDR:
        nonnull = len(values) - (values[_CDR_MAY_LACK_AT] is None)
    else:
        nonnull = len(values) - values.count(None)
    others = body.count(_COLON) - nonnull
    if others == 0 and type(payload) in _FLAT_MODELS:
        return Webhook(payload, body)
    if _BACKSLASH in body:
        return parse_webhook_precisely(body)
    try:
        marks = orjson.dumps(values).translate(None, _NOT_MARKS)  # refuses ints beyond 64 bits
    except TypeError:
        return parse_webhook_precisely(body)
    # The body's depth is at most 1 + its containers' brackets: the tuple's '[' is the 1.
    colons = marks.count(_COLON)
    if others != colons or len(marks) - colons > MAX_DEPTH:
        return parse_webhook_precisely(body)
    return Webhook(payload, body)


def parse_webhook_precisely(body: bytes) -> Webhook:
    """:func:`parse_webhook` without its fast path: the same answer for every body, slower; it
    alone names the field and reason of a refusal."""
    raw = decode_object(body)
    state = raw.get("state")
    model = _BY_STATE.get(state) if type(state) is str else None
    if model is None:
        try:
            model = _model_for(raw)
        except WebhookParseError as exc:
            exc.call_id = _any_call_id(raw)  # still key the rejected body by its call
            raise
    try:
        payload = _convert(raw, model)
    except WebhookParseError as exc:
        exc.kind = model.kind
        exc.call_id = _call_id(raw, model)
        raise
    return Webhook(payload, body, raw)


def to_builtins(webhook: Webhook) -> dict[str, Any]:
    """The webhook as a JSON-ready dict: the received fields in their order, known ones normalised.

    A field sent as ``null`` stays ``null`` and an absent one stays absent, so a body in normal
    form (numbers as numbers, ids as strings) comes back unchanged.
    """
    normal = msgspec.to_builtins(webhook.payload)
    return {key: normal.get(key, value) for key, value in webhook.raw.items()}


def encode_webhook(webhook: Webhook) -> bytes:
    """:func:`to_builtins` as compact JSON."""
    return orjson.dumps(to_builtins(webhook))


# The fast path: msgspec's typed decode, then proof that it saw everything the body holds.
_Decode = Callable[[bytes], ProviderPayload]
# Byte values, not one-byte strings: bytes.count and `in` skip the buffer protocol for an int.
_COLON, _BACKSLASH = b":\\"
# bytes.translate deletes every byte but these: the colons and the opening brackets.
_NOT_MARKS = bytes(sorted(set(range(256)) - set(b":{[")))
_astuple = msgspec.structs.astuple


def _complete(
    model: type[ProviderPayload], optional: tuple[str, ...] = ()
) -> type[ProviderPayload]:
    """``model`` with every field but ``optional`` required and none nullable: the provider's
    usual body, which sends every field, decodes into it with no ``None`` among the values to
    count but in ``optional``.

    A subclass under the model's name, equal to (and hashing and pickling like) the model's
    instances field for field, so that nothing downstream can tell the two apart. A field that
    could still hold ``None`` (typed ``Any``) is refused, since the proof would miscount it.
    """
    hints = typing.get_type_hints(model, include_extras=True)
    fields = [
        (name, hints[name], None) if name in optional else (name, _without_none(hints[name]))
        for name in model.__struct_fields__
    ]

    def __eq__(self: Any, other: object) -> bool:  # msgspec's compares the type too
        if isinstance(other, model):
            return _astuple(self) == _astuple(other)
        return NotImplemented

    def __ne__(self: Any, other: object) -> bool:
        equal = __eq__(self, other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self: Any) -> int:  # msgspec's hashes the type too
        return hash(_as_model(model, msgspec.structs.asdict(self)))

    def __reduce__(self: Any) -> tuple[Any, ...]:  # pickled as its model, found by name
        return _as_model, (model, msgspec.structs.asdict(self))

    complete = msgspec.defstruct(
        model.__name__,
        fields,
        bases=(model,),
        module=model.__module__,
        namespace={
            "__eq__": __eq__,
            "__ne__": __ne__,
            "__hash__": __hash__,
            "__reduce__": __reduce__,
        },
        kw_only=True,
        frozen=True,
    )
    nullable = (msgspec.inspect.NoneType, msgspec.inspect.AnyType)
    for field in msgspec.inspect.type_info(complete).fields:  # type: ignore[attr-defined]
        if field.name not in optional and any(
            isinstance(kind, nullable) for kind in leaf_types(field.type)
        ):
            raise TypeError(f"{model.__name__}.{field.name} may hold None in a complete body")
    return typing.cast(type[ProviderPayload], complete)


def _as_model(model: type[ProviderPayload], fields: dict[str, Any]) -> ProviderPayload:
    return model(**fields)


def _without_none(hint: Any) -> Any:
    """A type hint without its ``None`` branch (``X | None`` becomes ``X``)."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint
    rest = tuple(branch for branch in typing.get_args(hint) if branch is not type(None))
    return functools.reduce(operator.or_, rest)


def _is_flat(model: type[ProviderPayload]) -> bool:
    """Whether every field holds only text, numbers, booleans or null: no container, so no
    depth or nested keys to check. Unknown kinds count as containers, so a new field stays
    checked."""
    inspect = msgspec.inspect
    flat: tuple[type, ...] = (inspect.IntType, inspect.FloatType, inspect.BoolType)
    flat += (inspect.NoneType, inspect.StrType, inspect.LiteralType)
    fields = inspect.type_info(model).fields  # type: ignore[attr-defined]
    return all(isinstance(kind, flat) for field in fields for kind in leaf_types(field.type))


def leaf_types(kind: Any) -> list[Any]:
    """The types a field may hold, through ``Annotated`` metadata and unions."""
    if isinstance(kind, msgspec.inspect.Metadata):
        return leaf_types(kind.type)
    if isinstance(kind, msgspec.inspect.UnionType):
        return [leaf for branch in kind.types for leaf in leaf_types(branch)]
    return [kind]


# Only the CDR is tried as complete first: counting the Nones among its 38 fields costs a tenth
# of its parse, and a body missing a field pays a failed decode (2.2 µs). A live event has 8.
# The one field of the provider's API pages that its webhook sample does not send: a usual CDR
# lacks it, so it stays optional in the complete model, the one value counted (0.1 µs).
_CDR_MAY_LACK = "disposition"
_CDR_MAY_LACK_AT = CallDetailRecord.__struct_fields__.index(_CDR_MAY_LACK)
_COMPLETE_CDR = _complete(CallDetailRecord, (_CDR_MAY_LACK,))
_FLAT_MODELS = frozenset(
    model for model in (LiveCallEvent, CallDetailRecord, _COMPLETE_CDR) if _is_flat(model)
)


def _decoder(model: type[ProviderPayload]) -> _Decode:
    return msgspec.json.Decoder(model, strict=False).decode


# Which to try first (the CDR's decoder comes second): live events are about 250 bytes, CDRs
# about 1,500. A live event longer than this is left to the precise path.
_CDR_LIKELY_BYTES = 600
_DECODE_EVENT, _DECODE_CDR, _DECODE_COMPLETE_CDR = (
    _decoder(model) for model in (LiveCallEvent, CallDetailRecord, _COMPLETE_CDR)
)


_BY_STATE: dict[str, type[ProviderPayload]] = {CDR_STATE: CallDetailRecord} | {
    state: LiveCallEvent for state in LIVE_STATES
}


def _model_for(raw: dict[str, Any]) -> type[ProviderPayload]:
    state = raw.get("state")
    if type(state) is str:
        if state == CDR_STATE:
            return CallDetailRecord
        if state in LIVE_STATES:
            return LiveCallEvent
        reason = f"state {state[:40]!r} is not cdr, ringing, answered or hangup"
        raise WebhookParseError("state", "unknown_state", reason)
    if state is None:
        if "transaction_id" in raw:  # a CDR that forgot its state
            return CallDetailRecord
        reason = "no state, and no transaction_id to recognise a CDR by"
        raise WebhookParseError("state", "missing_field", reason)
    raise WebhookParseError("state", "wrong_type", "state must be a string")


def _convert(raw: dict[str, Any], model: type[ProviderPayload]) -> ProviderPayload:
    try:
        return msgspec.convert(raw, model, strict=False)
    except msgspec.ValidationError as exc:
        first = exc
    # Ids sent as JSON numbers become strings; done only after a failure to keep the hot path lean.
    changed = False
    for name in model.id_fields:
        value = raw.get(name)
        if type(value) is int:
            raw[name] = str(value)
            changed = True
    if changed:
        try:
            return msgspec.convert(raw, model, strict=False)
        except msgspec.ValidationError as exc:
            first = exc
    raise _from_validation(first) from None


def _any_call_id(raw: dict[str, Any]) -> str | None:
    """The call id of a body whose kind is unknown: ``call_uuid``, else ``transaction_id``."""
    return _call_id(raw, LiveCallEvent) or _call_id(raw, CallDetailRecord)


def _call_id(raw: dict[str, Any], model: type[ProviderPayload]) -> str | None:
    value = raw.get(model.id_fields[0])
    if type(value) is int:
        return str(value)
    return value if type(value) is str and value else None


# msgspec's messages, mapped to our codes. Pinned msgspec range; tests cover every branch.
_AT = r"(?: - at `\$(?P<path>[^`]*)`)?$"
_RULES: tuple[tuple[re.Pattern[str], ErrorCode], ...] = (
    (re.compile(r"^Object missing required field `(?P<name>[^`]+)`" + _AT), "missing_field"),
    (re.compile(r"^Expected `[^`]*` of length >= 1" + _AT), "empty_value"),
    (re.compile(r"^Expected `[^`]*` of length <= \d+" + _AT), "value_too_long"),
    (re.compile(r"^Expected `(?:int|float)` [<>]=? \S+" + _AT), "number_out_of_range"),
    (re.compile(r"^Number out of range" + _AT), "number_out_of_range"),
    (re.compile(r"^Invalid enum value .*?" + _AT), "invalid_value"),
    (re.compile(r"^Expected `[^`]+`, got `[^`]+`" + _AT), "wrong_type"),
)


def _from_validation(exc: msgspec.ValidationError) -> WebhookParseError:
    message = str(exc)
    for pattern, code in _RULES:
        if match := pattern.match(message):
            path = (match.group("path") or "").lstrip(".")
            if code == "missing_field":
                path = f"{path}.{match['name']}" if path else match["name"]
            return WebhookParseError(path or None, code, message)
    return WebhookParseError(None, "invalid_value", message)
