"""Where a user receives notices, checked; and by which routes a notice reaches them.

A user keeps an e-mail address and a Telegram chat, and may choose channels; with
none chosen, every channel they have an address for is used (e-mail, Telegram).
Slack, Teams and the signed webhook are chosen explicitly, since their addresses
are the company's (settings): a Slack or Teams URL is looked up for the user
(``@username``), else their team, else the company (``*``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import SecretStr

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.service.channels import CHANNELS
from saleskpi.service.principal import Principal
from saleskpi.store.state.contacts import ContactRecord, contact_of, save_contact

__all__ = ["ContactRecord", "Route", "checked_contact", "chosen_channels", "contact", "routes",
           "set_contact"]

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
# A chat's numeric id (groups and channels are negative), or a public channel's @name.
_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
MAX_EMAIL = 320


@dataclass(frozen=True)
class Route:
    """One channel a notice goes by to one user: its address, or why there is none."""

    channel: str
    address: str | None
    problem: str | None = None


def checked_contact(user_id: int, email: str | None, telegram_chat_id: str | None,
                    channels: list[str] | tuple[str, ...]) -> ContactRecord:
    """The contact as it will be stored, or ``InvalidQuery`` (code ``bad_contact``) naming
    the field."""
    address = (email or "").strip() or None
    if address is not None and (len(address) > MAX_EMAIL or not _EMAIL.match(address)):
        raise InvalidQuery(_("e-mail: {value!r} is not an address like anna@example.com",
                             value=address[:80]), code="bad_contact")
    chat = (telegram_chat_id or "").strip() or None
    if chat is not None and not _CHAT.match(chat):
        raise InvalidQuery(_("Telegram chat: {value!r} is not a chat id (a number: "
                             "@userinfobot tells yours, see docs/reports.md) or a @channel "
                             "name",
                             value=chat[:40]), code="bad_contact")
    chosen = [c.strip().lower() for c in channels if c.strip()]
    unknown = [c for c in chosen if c not in CHANNELS]
    if unknown:
        raise InvalidQuery(_("unknown channel {name!r}; use one of {known}", name=unknown[0][:40],
                             known=", ".join(CHANNELS)), code="bad_contact")
    return ContactRecord(user_id, address, chat, tuple(dict.fromkeys(chosen)))


def set_contact(settings: Settings, record: ContactRecord) -> ContactRecord:
    checked = checked_contact(record.user_id, record.email, record.telegram_chat_id,
                              record.channels)
    save_contact(settings.state_url, checked)
    return checked


def contact(settings: Settings, user_id: int) -> ContactRecord:
    return contact_of(settings.state_url, user_id)


def chosen_channels(contact: ContactRecord | None) -> tuple[str, ...]:
    if contact is None:
        return ()
    if contact.channels:
        return contact.channels
    return tuple(name for name, address in (("email", contact.email),
                                            ("telegram", contact.telegram_chat_id))
                 if address)


def _shared_url(urls: dict[str, SecretStr], user: Principal) -> str | None:
    for key in (f"@{user.username}", user.team, "*"):
        if key and key in urls:
            return urls[key].get_secret_value()
    return None


def routes(settings: Settings, user: Principal, contact: ContactRecord | None) -> list[Route]:
    found: list[Route] = []
    for channel in chosen_channels(contact):
        address: str | None
        problem = None
        if channel == "email":
            address = contact.email if contact else None
            if not address:
                problem = _("no e-mail address for {user}: saleskpi contacts set {user} "
                            "--email ADDRESS", user=user.username)
        elif channel == "telegram":
            address = contact.telegram_chat_id if contact else None
            if not address:
                problem = _("no Telegram chat for {user}: saleskpi contacts set {user} "
                            "--telegram CHAT_ID", user=user.username)
        elif channel in ("slack", "teams"):
            urls = settings.slack_webhooks if channel == "slack" else settings.teams_webhooks
            address = _shared_url(urls, user)
            if not address:
                problem = _("no {channel} webhook for {user}, their team or the company: set "
                            "{setting}", channel=channel, user=user.username,
                            setting=f"{channel}_webhooks")
        else:
            address = settings.webhook_url or None
            if not address:
                problem = _("the webhook channel has no URL: set webhook_url")
        found.append(Route(channel, address, problem))
    return found
