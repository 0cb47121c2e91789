"""HubSpot webhook deliveries, checked with signature v3.

HubSpot signs ``method + uri + body + timestamp`` with HMAC-SHA256 and the
app's client secret, base64-encoded, in ``X-HubSpot-Signature-v3``; the
timestamp (milliseconds) is ``X-HubSpot-Request-Timestamp``. The uri is the URL
HubSpot called: behind a proxy the host we see differs, so the configured
public ``webhook_url`` is used for it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import WebhookRejected

MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: reject anything older than five minutes
MAX_SKEW_MS = 60 * 1000  # and anything from the future beyond a clock's drift
# HubSpot decodes these in the uri before signing.
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
            "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _decoded(uri: str) -> str:
    for encoded, char in _DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def candidate_uris(received: str, public: str | None) -> list[str]:
    """The URL HubSpot called: the public one (with what we received after it), or ours."""
    got = urlsplit(received)
    uris = []
    if public:
        base = urlsplit(public.strip())
        path = base.path if base.path not in ("", "/") else got.path
        query = got.query or base.query
        uris.append(f"{base.scheme}://{base.netloc}{path}" + (f"?{query}" if query else ""))
    uris.append(received)
    found: list[str] = []
    for uri in uris:
        for variant in (uri, _decoded(uri)):
            if variant not in found:
                found.append(variant)
    return found


def verify(request: WebhookRequest, secret: str | None, public_url: str | None) -> str:
    """An id unique to this delivery, or WebhookRejected."""
    if not secret:
        raise WebhookRejected("no client secret is configured for HubSpot webhooks")
    signature = request.headers.get("x-hubspot-signature-v3", "").strip()
    timestamp = request.headers.get("x-hubspot-request-timestamp", "").strip()
    if not signature or not timestamp:
        raise WebhookRejected("unsigned")
    if not timestamp.isdigit():
        raise WebhookRejected("malformed timestamp")
    age = request.received_at * 1000 - int(timestamp)
    if age > MAX_AGE_MS or age < -MAX_SKEW_MS:
        raise WebhookRejected("stale")
    given = signature.encode("utf-8", "replace")
    if not any(
        hmac.compare_digest(
            signature_v3(secret, request.method.upper(), uri, request.body, timestamp).encode(),
            given)
        for uri in candidate_uris(request.url, public_url)
    ):
        raise WebhookRejected("forged")
    return delivery_id(request.body, signature)


def delivery_id(body: bytes, signature: str) -> str:
    """From the events' ids and attempt numbers (a retry by HubSpot is a new delivery)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("not JSON") from None
    if isinstance(payload, dict):  # a workflow's webhook action: one object, no event id
        return "signature:" + signature
    if not isinstance(payload, list) or not payload:
        raise WebhookRejected("not a list of events")
    keys = []
    for event in payload:
        if not isinstance(event, dict):
            raise WebhookRejected("an event is not an object")
        event_id, attempt = event.get("eventId"), event.get("attemptNumber", 0)
        if isinstance(event_id, bool) or not isinstance(event_id, int | str) or event_id == "":
            raise WebhookRejected("an event has no eventId")
        keys.append(f"{event_id}:{attempt}")
    return "events:" + hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()
