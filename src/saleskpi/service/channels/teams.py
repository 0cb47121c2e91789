"""Microsoft Teams: an incoming webhook (a Workflows "When a Teams webhook request is
received" flow, or a classic connector) gets the notice as an Adaptive Card.

Incoming webhooks take no files: attachments go by e-mail and Telegram.
"""

from __future__ import annotations

from saleskpi.service.channels.base import Message, Outbox

MAX_TEXT = 20_000


def payload(message: Message) -> dict[str, object]:
    notice = message.notice
    body: list[dict[str, object]] = [
        {"type": "TextBlock", "text": notice.subject, "weight": "Bolder", "size": "Medium",
         "wrap": True},
        {"type": "TextBlock", "text": notice.body.strip()[:MAX_TEXT], "wrap": True},
    ]
    card: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4", "body": body}
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "saleskpi", "url": message.link}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def send(outbox: Outbox, message: Message, url: str) -> None:
    outbox.post(url, json=payload(message))
