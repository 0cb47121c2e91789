"""The channels a notice goes by, one module each: e-mail, Telegram, Slack, Teams, webhook.

They live in the service layer, not in ``sources`` beside the CRM connectors: sources
bring data in, channels carry the product's own words out to people, and need what
the service owns (users, their contacts, the delivery log). What they share with
the connectors, the retry policy (``sources/connectors/pacing.py``) and the scrubbing
of secrets from messages, they import from there.

Each module has ``send(outbox, message, address)``: it returns when the channel has
accepted the message, raises ``TryAgain`` for what may pass (a timeout, 429, 5xx, an
SMTP 4xx) and ``ChannelError`` for what will not (a wrong token, an unknown chat).
"""

from __future__ import annotations

from collections.abc import Callable

from saleskpi.service.channels import slack, smtp, teams, telegram, webhook
from saleskpi.service.channels.base import Message, Outbox

CHANNELS = ("email", "telegram", "slack", "teams", "webhook")

Sender = Callable[[Outbox, Message, str], None]
SENDERS: dict[str, Sender] = {
    "email": smtp.send, "telegram": telegram.send, "slack": slack.send,
    "teams": teams.send, "webhook": webhook.send,
}
