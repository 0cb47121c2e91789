"""Slack: an incoming webhook (the URL is the address) gets the notice as mrkdwn text.

Incoming webhooks take no files: attachments go by e-mail and Telegram.
"""

from __future__ import annotations

from saleskpi.service.channels.base import Message, Outbox

MAX_TEXT = 3000  # a section block's limit


def escape(text: str) -> str:
    """Slack's three control characters, as its formatting guide asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, object]:
    notice = message.notice
    text = f"*{escape(notice.subject)}*\n{escape(notice.body.strip())}"
    if message.link:
        text += f"\n<{message.link}|{escape(message.link)}>"
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 1] + "…"
    # "text" is what notifications and old clients show; the block is the message.
    return {"text": escape(notice.subject),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def send(outbox: Outbox, message: Message, url: str) -> None:
    outbox.post(url, json=payload(message))
