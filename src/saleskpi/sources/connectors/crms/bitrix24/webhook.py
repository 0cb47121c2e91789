"""Bitrix24 outgoing webhooks (ONCRMDEALUPDATE, ...): checked by their application token.

Bitrix24 posts ``application/x-www-form-urlencoded`` bodies such as
``event=ONCRMDEALUPDATE&event_handler_id=7&data[FIELDS][ID]=201&ts=1710000000&
auth[domain]=acme.bitrix24.ru&auth[member_id]=...&auth[application_token]=...``.
There is no signature header: the ``application_token`` Bitrix24 shows when the
outgoing webhook is created is the shared secret. A delivery is accepted only when:

- the form parses, names a CRM event (``ONCRM...``) and the id of what changed;
- ``auth[application_token]`` equals the configured token (compared in constant time);
- ``ts`` (when Bitrix24 sent it) is within five minutes of when it arrived.

The delivery id is ``event:id:ts``: a delivery sent again is refused as a replay.

A ``...DELETE`` event names what was deleted (``deleted_ids``): a won or lost deal
is listed nowhere once deleted, so this is the only way an incremental sync sees it.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import parse_qsl

from saleskpi.domain.webhooks import WebhookRequest
from saleskpi.sources.connectors.base import WebhookRejected

REPLAY_WINDOW_S = 5 * 60
_EVENT = re.compile(r"^ONCRM[A-Z_]+$")
# Ids and unix times: ASCII digits, at most 19 (a 64-bit integer); "²" or 5,000 digits
# are not ids (int() refuses over 4,300 digits).
_NUMBER = re.compile(r"^[0-9]{1,19}$", re.ASCII)
_KEY = re.compile(r"^[A-Za-z_]+(\[[A-Za-z0-9_]*\])*$")
FORM = "application/x-www-form-urlencoded"


def verify_delivery(request: WebhookRequest, *, token: str) -> str:
    """The delivery id, or WebhookRejected saying why not."""
    if request.method.upper() != "POST":
        raise WebhookRejected("Bitrix24 webhooks are POST requests")
    if not token:
        raise WebhookRejected("no outgoing webhook token is configured for Bitrix24")
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.lower().startswith(FORM):
        raise WebhookRejected(f"not a Bitrix24 webhook form: content type {content_type!r}")
    form = _parse(request.body)
    given = form.get("auth[application_token]", "")
    if not given:
        raise WebhookRejected("unsigned: the delivery carries no application token")
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise WebhookRejected("forged: the application token does not match")
    event = form.get("event", "").upper()
    if not _EVENT.match(event):
        raise WebhookRejected("malformed: not a Bitrix24 CRM event")
    record = form.get("data[FIELDS][ID]", "")
    if not _NUMBER.match(record):
        raise WebhookRejected("malformed: data[FIELDS][ID] is not an id")
    sent = form.get("ts", "")
    if not _NUMBER.match(sent):
        raise WebhookRejected("malformed: ts is not a unix time")
    if abs(request.received_at - int(sent)) > REPLAY_WINDOW_S:
        raise WebhookRejected("stale: sent more than five minutes before it arrived")
    return f"{event}:{int(record)}:{int(sent)}"


# What each deletion event removes, per entity of the store.
DELETIONS = {
    "ONCRMDEALDELETE": ("deals", "stage_changes"),
    "ONCRMLEADDELETE": ("leads",),
    "ONCRMCOMPANYDELETE": ("accounts",),
    "ONCRMACTIVITYDELETE": ("activities",),
}


def deleted_ids(request: WebhookRequest) -> dict[str, list[str]]:
    """The ids a verified deletion event names, per entity (empty for any other event)."""
    form = _parse(request.body)
    record = form.get("data[FIELDS][ID]", "")
    entities = DELETIONS.get(form.get("event", "").upper(), ())
    if not entities or not _NUMBER.match(record):
        return {}
    return {entity: [str(int(record))] for entity in entities}


def _parse(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("malformed: the body is not a form") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if not _KEY.match(key):
            raise WebhookRejected(f"malformed: unexpected key {key[:40]!r}")
        if key in form:
            raise WebhookRejected(f"malformed: {key[:40]!r} is given twice")
        form[key] = value
    return form
