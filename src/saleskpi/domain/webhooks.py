"""A CRM webhook delivery as received: what connectors verify."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WebhookRequest:
    """What a webhook delivery looked like on the wire."""

    method: str
    url: str  # full URL as received, with query string
    path_token: str | None  # the secret part of /webhooks/<crm>/<token>, if any
    headers: dict[str, str]  # lower-case names
    body: bytes
    received_at: float  # unix seconds
