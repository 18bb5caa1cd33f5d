"""One webhook body to POST to an ingress, and when: what `simulate` and `replay` both send."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """A body to post ``at_s`` seconds after the run's start (on the traffic's own clock, which
    ``--speed`` scales: 2 sends it at ``at_s / 2``, 0 as soon as the previous ones allow)."""

    at_s: float
    body: bytes
    call_id: str  # for the summary and the caller's accounting; "" when unknown
    # Sent as X-Request-Id on every attempt when set: the ingress writes it on the record, so a
    # caller can find each acknowledged delivery on its topic (the fault tests do).
    request_id: str = ""
