"""``omicall.rejected``: an authenticated body that failed validation, with the reason.

The body is kept byte for byte so it can be replayed once the parser is fixed: as text when it
is UTF-8, else base64 (``body_encoding`` says which).
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import msgspec

from callstream.schemas.errors import Category, ErrorCode, PayloadKind, WebhookParseError


class RejectedWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """One refused webhook body and why it was refused."""

    code: ErrorCode
    category: Category
    field: str | None
    detail: str
    received_at_ms: Annotated[int, msgspec.Meta(ge=0)]
    kind: PayloadKind | None = None
    call_id: str | None = None
    body: str
    body_encoding: Literal["utf-8", "base64"]
    body_bytes: Annotated[int, msgspec.Meta(ge=0)]

    def raw_body(self) -> bytes:
        """The body as it was received."""
        if self.body_encoding == "base64":
            return base64.b64decode(self.body)
        return self.body.encode()


def rejected_webhook(error: WebhookParseError, body: bytes, received_at_ms: int) -> RejectedWebhook:
    """The record for ``omicall.rejected`` of a ``body`` the parser refused with ``error``."""
    encoding: Literal["utf-8", "base64"] = "utf-8"
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    return RejectedWebhook(
        code=error.code,
        category=error.category,
        field=error.field,
        detail=error.reason,
        received_at_ms=received_at_ms,
        kind=error.kind,
        call_id=error.call_id,
        body=text,
        body_encoding=encoding,
        body_bytes=len(body),
    )
