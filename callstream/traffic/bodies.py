"""A simulated call's webhooks as OMICall sends them: its live events and its CDR, with the
fields in the provider's order and agreeing with each other as its sample does (``duration`` =
ring + talk, ``record_seconds`` = ``answer_sec``, ``bill_sec`` in a 6-second first block).

Pure and deterministic: the same call gives the same bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from callstream.traffic.calls import CallCentre, SimulatedCall, unsigned

LiveState = str  # "ringing", "answered", "hangup"
RECORDINGS = "https://public-v1-stg.omicrm.com/third_party/recording/uc"


def live_event(call: SimulatedCall, state: LiveState) -> bytes:
    """The ``state`` event of ``call``, stamped with the moment that state began."""
    at_s = {
        "ringing": call.start_s,
        "answered": call.start_s + call.ring_s,
        "hangup": call.start_s + call.duration_s,
    }[state]
    calling, called = _ends(call)
    return orjson.dumps(
        {
            "to_number": called,
            "created_time": call.start_s,
            "date_time": at_s * 1000,
            "from_number": calling,
            "hotline": call.hotline or "",
            "call_uuid": call.call_id,
            "state": state,
            "direction": call.direction,
        }
    )


def live_states(call: SimulatedCall) -> list[LiveState]:
    return ["ringing", "answered", "hangup"] if call.answered else ["ringing", "hangup"]


def cdr(
    call: SimulatedCall,
    centre: CallCentre,
    *,
    created_s: float,
    corrected_s: float | None = None,
    retry: int = 1,
    disposition: bool = False,
) -> bytes:
    """The call's CDR, created at ``created_s`` (epoch seconds); ``corrected_s``: when the
    provider re-issued it (a newer ``last_updated_date``, the price re-rated:
    :func:`corrected_price`); ``retry``: its ``send_num_retry``; ``disposition``: carry the
    call-history API's ``disposition``, as some CDRs do."""
    end_s = call.start_s + call.duration_s
    corrected = corrected_s is not None
    created_ms = round(created_s * 1000)
    updated_ms = created_ms + 150 if corrected_s is None else round(corrected_s * 1000)
    calling, called = _ends(call)
    agent = call.agent
    person = call.customer
    body: dict[str, Any] = {
        "answer_sec": call.talk_s,
        "bill_sec": call.bill_s,
        "call_out_price": corrected_price(call) if corrected else call.price,
        "create_by": {
            "contact_id": _hex(centre.tenant_id, "contact", agent.extension),
            "id": _hex(centre.tenant_id, "user", agent.extension),
            "name": agent.name,
        },
        "created_date": created_ms,
        "customer": {}
        if person is None
        else {"full_name": person.name, "full_name_unsigned": unsigned(person.name).lower()},
        "destination_number": called,
        "direction": call.direction,
    }
    if disposition:
        body["disposition"] = "answered" if call.answered else "cancelled"
    body.update(
        {
            "domain_fusion": centre.domain,
            "duration": call.duration_s,
            "endby_name": call.ended_by,
            "from_number": calling,
            "hotline": call.hotline or "",
            "is_auto_call": False,
            "is_have_forward_out": False,
            "ivr": "main" if call.direction == "inbound" else "none",
            "last_updated_date": updated_ms,
            "note": "",
            "phone_number": call.peer,
            "provider": "vnpt" if person is None or person.kind == "landline" else person.network,
            "record_seconds": call.talk_s,
            "recording_file_url": _recording(call) if call.answered else "",
            "send_num_retry": retry,
            "sip_number": call.hotline or "",
            "sip_user": agent.extension,
            "source_number": call.hotline or "",
            "state": "cdr",
            "tag": [],
            "tenant_id": centre.tenant_id,
            "time_end_call": end_s,
            "time_start_call": call.start_s,
            "time_start_to_answer": call.start_s + (call.ring_s if call.answered else 0),
            "to_number": called,
            "transaction_id": call.call_id,
            "transfer_histories": _transfers(call),
            "user": [{"full_name": agent.name, "full_name_unsigned": unsigned(agent.name)}],
        }
    )
    return orjson.dumps(body)


def corrected_price(call: SimulatedCall) -> float:
    """The price of a corrected CDR: the call re-rated 10% higher (the provider re-issues a CDR
    when its rating changes; what changes is not documented, a price is the likely field)."""
    return round(call.price * 1.1, 3)


def _ends(call: SimulatedCall) -> tuple[str, str]:
    """(from_number, to_number): inbound calls come from the customer to the extension that
    rang, outbound and local ones go from the agent's extension."""
    if call.direction == "inbound":
        return call.peer, call.agent.extension
    return call.agent.extension, call.peer


def _transfers(call: SimulatedCall) -> list[dict[str, Any]]:
    if not call.transferred:
        return []
    return [
        {
            "from": "ivr",
            "to": call.agent.extension,
            "time": call.start_s + call.ring_s // 2,
        }
    ]


def _recording(call: SimulatedCall) -> str:
    return f"{RECORDINGS}?id={_hex(call.call_id, 'recording')}&code={call.call_id}"


def _hex(*parts: str) -> str:
    """A stable id of 24 hex digits, like the provider's object ids."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:24]
