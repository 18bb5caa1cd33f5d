"""The one error the webhook parser raises, with stable codes the ingress maps to HTTP.

A ``malformed`` error means the body is not acceptable JSON at all (HTTP 400); an ``invalid``
error means it is a JSON object but not a valid live event or CDR (HTTP 422). The codes are part
of the public contract (docs/schemas.md): they reach clients in ``{"error": code}`` and the
``omicall.rejected`` topic, so change them only with a version bump.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorCode = Literal[
    # malformed: not JSON, or JSON we refuse to carry (400)
    "empty_body",
    "invalid_json",
    "invalid_unicode",
    "duplicate_key",
    "too_deep",
    "number_too_large",
    "not_object",
    # invalid: a JSON object, but not a live event or CDR (422)
    "unknown_state",
    "missing_field",
    "wrong_type",
    "empty_value",
    "value_too_long",
    "invalid_value",
    "number_out_of_range",
]
Category = Literal["malformed", "invalid"]
PayloadKind = Literal["event", "cdr"]
PAYLOAD_KINDS: tuple[PayloadKind, ...] = get_args(PayloadKind)

ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
_FIRST_INVALID = ERROR_CODES.index("unknown_state")
MALFORMED_CODES: frozenset[ErrorCode] = frozenset(ERROR_CODES[:_FIRST_INVALID])


class WebhookParseError(ValueError):
    """A webhook body was refused: which field (``None`` for the whole body), a code, and why.

    ``kind`` and ``call_id`` are filled when the parser got far enough to know them, so a
    rejected body can still be keyed by its call on ``omicall.rejected``.
    """

    def __init__(
        self,
        field: str | None,
        code: ErrorCode,
        reason: str,
        *,
        kind: PayloadKind | None = None,
        call_id: str | None = None,
    ) -> None:
        self.field = field
        self.code: ErrorCode = code
        self.reason = reason
        self.kind: PayloadKind | None = kind
        self.call_id = call_id
        where = f"field {field!r}" if field is not None else "body"
        super().__init__(f"{where}: {reason} [{code}]")

    @property
    def category(self) -> Category:
        """``malformed`` (answer 400) or ``invalid`` (answer 422)."""
        return "malformed" if self.code in MALFORMED_CODES else "invalid"
