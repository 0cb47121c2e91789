"""Telegram: the bot's ``sendMessage``, then ``sendDocument`` for each attachment.

The address is the chat's id (a person's numeric id, a group's negative one) or a
channel's @name. The token is part of the API's URL, so every error text is
scrubbed of it (``Outbox.safe``). A 429's ``parameters.retry_after`` is honoured
(``base.check``).
"""

from __future__ import annotations

from saleskpi.domain.i18n import _
from saleskpi.service.channels.base import ChannelError, Message, Outbox

MAX_TEXT = 4096  # Telegram's limit for one message


def send(outbox: Outbox, message: Message, chat_id: str) -> None:
    token = outbox.settings.telegram_bot_token
    if token is None or not token.get_secret_value():
        raise ChannelError(_("Telegram is not set up: set telegram_bot_token (see "
                             "docs/reports.md)"))
    base = f"{outbox.settings.telegram_api_url}/bot{token.get_secret_value()}"
    outbox.post(f"{base}/sendMessage", json={
        "chat_id": chat_id, "text": message.text(MAX_TEXT), "disable_web_page_preview": True})
    for attachment in message.notice.attachments:
        outbox.post(f"{base}/sendDocument", data={"chat_id": chat_id},
                    files={"document": (attachment.filename, attachment.data,
                                        attachment.content_type)})
