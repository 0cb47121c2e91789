"""amoCRM webhook deliveries: checked by the secret in the URL, since amoCRM signs nothing.

amoCRM posts ``application/x-www-form-urlencoded`` bodies such as
``leads[status][0][id]=7&...&account[subdomain]=acme``. There is no signature
header, so a delivery is accepted only when:

- it came to ``/webhooks/amocrm/<secret>`` with the configured secret (compared in
  constant time);
- the body parses as an amoCRM webhook form: known entity and action keys, and
  ``account[subdomain]`` equal to the connected account's;
- its newest timestamp (``updated_at``, ``last_modified``, ...) is within five
  minutes of now, when it carries one (deletions carry none).

The delivery id is the SHA-256 of the body: amoCRM sends an identical body again
only when it retries a delivery, and the router refuses a repeated id as a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import parse_qsl, urlsplit

from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import WebhookRejected

REPLAY_WINDOW_S = 5 * 60
# Entities amoCRM sends webhooks for, and what happened to them.
ENTITIES = frozenset({"leads", "contacts", "companies", "customers", "task", "tasks",
                      "catalogs", "unsorted", "talk", "message"})
ACTIONS = frozenset({"add", "update", "delete", "restore", "status", "responsible", "note",
                     "delete_note", "mail_in", "call_in", "chat", "site_visit", "period"})
TIME_FIELDS = ("updated_at", "last_modified", "created_at", "date_create")
_KEY = re.compile(r"^([a-z_]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def subdomain_of(base_url: str) -> str:
    """``acme`` for https://acme.amocrm.ru or https://acme.kommo.com."""
    host = urlsplit(base_url).hostname or ""
    return host.split(".")[0].lower()


def verify_delivery(request: WebhookRequest, *, secret: str, subdomain: str) -> str:
    """The delivery id (SHA-256 of the body), or WebhookRejected saying why not."""
    if request.method.upper() != "POST":
        raise WebhookRejected("amoCRM webhooks are POST requests")
    if not secret or not subdomain:
        raise WebhookRejected("no webhook secret or account address is configured for amoCRM")
    if request.path_token is None:
        raise WebhookRejected("unsigned: the URL has no secret (/webhooks/amocrm/<secret>)")
    if not hmac.compare_digest(request.path_token.encode(), secret.encode()):
        raise WebhookRejected("forged: the secret in the URL does not match")
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.startswith("application/x-www-form-urlencoded"):
        raise WebhookRejected(f"not an amoCRM webhook form: content type {content_type!r}")
    form = _parse(request.body)
    if form.get("account[subdomain]", "").lower() != subdomain:
        raise WebhookRejected("the delivery is for another amoCRM account")
    newest = _newest_time(form)
    if newest is not None and abs(request.received_at - newest) > REPLAY_WINDOW_S:
        raise WebhookRejected("stale: the change it reports is older than five minutes")
    return hashlib.sha256(request.body).hexdigest()


def _parse(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("malformed: the body is not a form") from None
    form: dict[str, str] = {}
    has_event = False
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise WebhookRejected(f"malformed: unexpected key {key[:40]!r}")
        root, rest = match.groups()
        parts = _PART.findall(rest)
        if root in ENTITIES:
            # entity[action][index][field]...: the shape of every amoCRM event
            if len(parts) < 3 or parts[0] not in ACTIONS or not parts[1].isdigit():
                raise WebhookRejected(f"malformed: unexpected key {key[:40]!r}")
            has_event = True
        elif root != "account":
            raise WebhookRejected(f"malformed: unexpected key {key[:40]!r}")
        form[key] = value
    if not has_event:
        raise WebhookRejected("malformed: the form reports no change")
    return form


def _newest_time(form: dict[str, str]) -> int | None:
    times = []
    for key, value in form.items():
        if key.startswith("account[") or not key.endswith(tuple(f"[{f}]" for f in TIME_FIELDS)):
            continue
        if value == "":
            continue
        if not value.isdigit():
            raise WebhookRejected(f"malformed: {key[:40]} is not a unix time")
        times.append(int(value))
    return max(times) if times else None
