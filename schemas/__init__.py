"""Typed models of every payload and the published contract of every topic.

The ingress and processors need only :func:`parse_webhook` (bytes -> :class:`Webhook` or
:class:`WebhookParseError`), the models, and the topic registry in :mod:`.topics`.
"""

from callstream.schemas.calls import CallState, CompletedCall, LiveCall
from callstream.schemas.errors import ERROR_CODES, WebhookParseError
from callstream.schemas.metrics import WindowMetrics
from callstream.schemas.omicall import CallDetailRecord, LiveCallEvent
from callstream.schemas.parse import Webhook, encode_webhook, parse_webhook, to_builtins
from callstream.schemas.rejected import RejectedWebhook, rejected_webhook

__all__ = [
    "ERROR_CODES",
    "CallDetailRecord",
    "CallState",
    "CompletedCall",
    "LiveCall",
    "LiveCallEvent",
    "RejectedWebhook",
    "Webhook",
    "WebhookParseError",
    "WindowMetrics",
    "encode_webhook",
    "parse_webhook",
    "rejected_webhook",
    "to_builtins",
]
