"""What OMICall sends: the live call-state event and the final CDR, as typed msgspec Structs.

Field names and units follow /docs/schemas.md and the provider page. Every field the page names
is modelled; only the ids and what the pipeline cannot work without are required. Nested provider
objects (``create_by``, ``customer``, ``user``…) stay plain JSON because the page does not fix
their shape. The models never hold unknown fields: :class:`callstream.schemas.parse.Webhook`
keeps the decoded body so that they round-trip.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from callstream.schemas.errors import PayloadKind

# Bounds reject nonsense early and keep numbers inside 64 bits for every consumer; numeric
# strings ("12") pass the same bounds after conversion, and "nan"/"inf" fail them.
_MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59Z
CallId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, description="the call's id")]
Number = Annotated[str, msgspec.Meta(max_length=64, description="phone number or extension")]
Text = Annotated[str, msgspec.Meta(max_length=4096)]
EpochSeconds = Annotated[int, msgspec.Meta(ge=0, le=_MAX_EPOCH_S, description="epoch seconds")]
EpochMillis = Annotated[
    int, msgspec.Meta(ge=0, le=_MAX_EPOCH_S * 1000 + 999, description="epoch milliseconds")
]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=10_000_000, description="a duration, seconds")]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
Price = Annotated[float, msgspec.Meta(ge=0, le=1e12, description="price, currency unstated")]
Direction = Literal["inbound", "outbound", "local"]
Disposition = Annotated[
    str,
    msgspec.Meta(
        max_length=4096,
        description="answered or cancelled (not answered); another value is kept, not read",
    ),
]
LiveState = Literal["ringing", "answered", "hangup"]
LIVE_STATES: frozenset[str] = frozenset(("ringing", "answered", "hangup"))
CDR_STATE = "cdr"


class LiveCallEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A call changed state (ringing, answered, hangup); sent while the call is in progress."""

    kind: ClassVar[PayloadKind] = "event"
    # Fields sent as JSON numbers are turned into strings before validation (see parse.py).
    id_fields: ClassVar[tuple[str, ...]] = ("call_uuid", "from_number", "to_number", "hotline")

    to_number: Number | None = None
    created_time: EpochSeconds | None = None
    date_time: EpochMillis
    from_number: Number | None = None
    hotline: Number | None = None
    call_uuid: CallId
    state: LiveState
    direction: Direction

    @property
    def call_id(self) -> str:
        """The id shared with the call's CDR (``transaction_id``)."""
        return self.call_uuid


class CallDetailRecord(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The final record of a call, sent after it ended (``state`` is ``"cdr"``)."""

    kind: ClassVar[PayloadKind] = "cdr"
    id_fields: ClassVar[tuple[str, ...]] = (
        "transaction_id",
        "from_number",
        "to_number",
        "hotline",
        "destination_number",
        "phone_number",
        "sip_number",
        "sip_user",
        "source_number",
        "tenant_id",
    )

    answer_sec: Seconds | None = None
    bill_sec: Seconds
    call_out_price: Price | None = None
    create_by: dict[str, Any] | None = None
    created_date: EpochMillis | None = None
    customer: dict[str, Any] | None = None
    destination_number: Number | None = None
    direction: Direction
    # Not in the webhook page's sample; the provider's call-history API carries it: "answered"
    # or "cancelled" (not answered). When present it decides whether the call was answered
    # (processors/cdr_reading.py; the evidence: docs/call-state.md, "Reading the CDR").
    disposition: Disposition | None = None
    domain_fusion: Text | None = None
    duration: Seconds
    endby_name: Text | None = None
    from_number: Number | None = None
    hotline: Number | None = None
    is_auto_call: bool | None = None
    is_have_forward_out: bool | None = None
    ivr: Text | None = None
    last_updated_date: EpochMillis | None = None
    note: Text | None = None
    phone_number: Number | None = None
    provider: Text | None = None
    record_seconds: Seconds | None = None
    recording_file_url: Text | None = None
    send_num_retry: Count | None = None
    sip_number: Number | None = None
    sip_user: Number | None = None
    source_number: Number | None = None
    # Absent only when the body was recognised as a CDR by its transaction_id.
    state: Literal["cdr"] | None = None
    tag: list[Any] | None = None
    tenant_id: Text | None = None
    time_end_call: EpochSeconds | None = None
    time_start_call: EpochSeconds
    time_start_to_answer: EpochSeconds | None = None
    to_number: Number | None = None
    transaction_id: CallId
    transfer_histories: list[Any] | None = None
    user: list[dict[str, Any]] | None = None

    @property
    def call_id(self) -> str:
        """The id shared with the call's live events (``call_uuid``)."""
        return self.transaction_id

    @property
    def agent_name(self) -> str | None:
        """``create_by.name``: the agent who made the call, when the provider says."""
        name = (self.create_by or {}).get("name")
        return name if isinstance(name, str) else None


ProviderPayload = LiveCallEvent | CallDetailRecord
