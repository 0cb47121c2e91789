"""Pipedrive webhook deliveries: HTTP basic auth, a fresh timestamp, a well-formed body.

Pipedrive does not sign its webhooks: the only secret is the basic-auth user
and password set on the webhook (``http_auth_user``/``http_auth_password``),
sent with every delivery. Basic auth does not cover the body, so the body is
only a hint: the router reacts with an incremental sync that reads the change
from the API, never from the payload.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import WebhookRejected

REPLAY_WINDOW_S = 300.0  # deliveries stamped more than 5 minutes away are refused
# Rejection reasons are plain English: they go to logs, never to a user (the router
# answers every rejection with the same 401).


def verify(request: WebhookRequest, user: str, password: str) -> str:
    """The delivery's id, or WebhookRejected; see the module docstring."""
    if not user or not password:
        raise WebhookRejected("pipedrive webhooks are not set up: connect again with "
                              "webhook_user and webhook_password")
    _check_credentials(request.headers.get("authorization", ""), user, password)
    payload = _payload(request.body)
    meta = payload.get("meta")
    if not isinstance(meta, dict):
        raise WebhookRejected("pipedrive webhook without a meta block")
    sent_at = _timestamp(meta)
    if abs(request.received_at - sent_at) > REPLAY_WINDOW_S:
        raise WebhookRejected(f"pipedrive webhook sent at {sent_at:.0f} is outside the "
                              f"{REPLAY_WINDOW_S:.0f} s replay window")
    if not (meta.get("object") or meta.get("entity")) or not meta.get("action"):
        raise WebhookRejected("pipedrive webhook without an object or action")
    # v1's meta.id is the changed object's id, not the delivery's: the same deal
    # changed twice would look like a replay. The whole payload, key order and
    # spacing aside, is unique to one delivery attempt (it carries the event's
    # microsecond timestamp and the retry number).
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "pipedrive:" + hashlib.sha256(canonical.encode()).hexdigest()


def _check_credentials(header: str, user: str, password: str) -> None:
    scheme, _sep, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookRejected("pipedrive webhook without basic auth")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("pipedrive webhook with unreadable basic auth") from None
    given_user, colon, given_password = given.partition(b":")
    # Both comparisons always run: the time taken says nothing about which failed.
    user_ok = hmac.compare_digest(given_user, user.encode())
    password_ok = hmac.compare_digest(given_password, password.encode())
    if not (colon and user_ok and password_ok):
        raise WebhookRejected("pipedrive webhook with wrong credentials")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("pipedrive webhook body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("pipedrive webhook body is not a JSON object")
    return payload


def _timestamp(meta: dict[str, Any]) -> float:
    """Unix seconds of the event: v1 ``timestamp``/``timestamp_micro``, v2 ISO 8601 or seconds."""
    micro = meta.get("timestamp_micro")
    if isinstance(micro, int) and not isinstance(micro, bool) and micro > 0:
        return micro / 1_000_000
    value = meta.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value) / (1000 if value > 1e11 else 1)  # seconds, or milliseconds
    if isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp()
    raise WebhookRejected("pipedrive webhook without a valid timestamp")
