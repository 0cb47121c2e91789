"""A generic webhook: the notice as JSON, signed with HMAC-SHA256 so the receiver knows
it came from this saleskpi and was not replayed.

Headers: ``X-Saleskpi-Timestamp`` (Unix seconds), ``X-Saleskpi-Signature``
(``sha256=`` and the hex HMAC-SHA256, keyed with ``webhook_secret``, of the
timestamp, a dot and the raw body) and ``X-Saleskpi-Key`` (the notice's key: the
same key is the same event). A receiver recomputes the HMAC over the bytes it got,
compares in constant time, and refuses timestamps older than five minutes
(docs/reports.md has the code). Nothing unsigned is sent: without a secret the
channel fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from saleskpi.domain.i18n import _
from saleskpi.service.channels.base import ChannelError, Message, Outbox

TIMESTAMP_HEADER = "X-Saleskpi-Timestamp"
SIGNATURE_HEADER = "X-Saleskpi-Signature"
KEY_HEADER = "X-Saleskpi-Key"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def payload(message: Message) -> dict[str, object]:
    notice = message.notice
    return {
        "key": notice.key, "kind": notice.kind, "recipient": notice.recipient,
        "subject": notice.subject, "body": notice.body, "link": message.link,
        "attachments": [{"filename": a.filename, "content_type": a.content_type,
                         "size": len(a.data), "data": base64.b64encode(a.data).decode()}
                        for a in notice.attachments],
    }


def send(outbox: Outbox, message: Message, url: str) -> None:
    secret = outbox.settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ChannelError(_("the webhook is not signed without webhook_secret: set it (see "
                             "docs/reports.md)"))
    body = json.dumps(payload(message), ensure_ascii=False).encode()

    def headers() -> dict[str, str]:
        # A fresh timestamp on every try: a retry minutes later must still be accepted.
        stamp = str(int(time.time()))
        return {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: signature(secret.get_secret_value().encode(), stamp, body),
                KEY_HEADER: message.notice.key}

    outbox.post_signed(url, body, headers)
